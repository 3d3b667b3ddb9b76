# Тексты бота на русском: для тех, кто выбрал русский (/settings language ru) или чьё
# приложение Telegram на русском. Ключи те же, что в en.ftl (это проверяет тест).

## Команды: /help и меню команд Telegram

help-commands = Команды:
help-workflows = Сценарии:
help-dialogue-hint = В диалоге отправьте -, чтобы пропустить необязательное поле, и /cancel, чтобы остановиться.
help-import-hint = Для импорта отправьте CSV-файл с подписью contacts, companies, deals или tasks: сначала вы увидите предпросмотр.
cmd-help = Список команд
cmd-find = Поиск контактов, компаний и сделок
cmd-contacts = Контакты: список или поиск
cmd-companies = Компании: список или поиск
cmd-deals = Сделки: список или поиск
cmd-addcontact = Добавить контакт, поле за полем
cmd-addcompany = Добавить компанию, поле за полем
cmd-editcontact = Изменить контакт
cmd-editcompany = Изменить компанию
cmd-adddeal = Добавить сделку, поле за полем
cmd-editdeal = Изменить сделку
cmd-pipeline = Сделки по этапам; перемещайте их кнопками
cmd-tasks = Мои открытые задачи
cmd-today = Мои задачи на сегодня
cmd-addtask = Добавить себе задачу
cmd-note = Добавить заметку к записи
cmd-delete = Удалить запись после подтверждения
cmd-export = Скачать записи CSV-файлом
cmd-run = Запустить сценарий
cmd-runs = Последние запуски сценариев и их статус
cmd-approvals = Согласования, ждущие моего решения, с кнопками
cmd-schedules = Сценарии по расписанию и их следующий запуск
cmd-settings = Мой часовой пояс, напоминания о задачах и язык
cmd-invite = Создать одноразовое приглашение (для администраторов)
cmd-web = Одноразовая ссылка для входа в веб-приложение
cmd-cancel = Прервать текущий диалог
cmd-start = Начать или использовать код приглашения
workflow-run = Запустить { $workflow }

## Сообщения, на которые бот не действует

text-only = Я понимаю только текстовые сообщения (и CSV-файлы для импорта). Отправьте /help, чтобы увидеть команды.
malformed-command = Это не похоже на команду. Отправьте /help, чтобы увидеть список.
plain-text-hint = Отправьте /help, чтобы увидеть команды, или /find ТЕКСТ для поиска в CRM.
unknown-command = Неизвестная команда /{ $command }. Отправьте /help, чтобы увидеть список.
edits-ignored = Я вижу, что вы отредактировали сообщение. Правки не выполняются — отправьте исправленное сообщение ещё раз.
edit-usage = Использование: /{ $command } ID — номер, показанный в записи, например /{ $command } 42
button-too-old = Эта кнопка слишком старая; выполните команду ещё раз.
button-unknown-user = Вы не зарегистрированы в этой CRM.
button-expired = Срок действия кнопки истёк; выполните команду ещё раз.
edit-only-records = Здесь можно изменять только контакты, компании и сделки.

## Ошибки движка

error-forbidden = ⛔ Ваша роль этого не позволяет. Если нужно, обратитесь к администратору.
error-not-found = Этой записи больше нет (или она вам не видна).
error-unauthorized = Токен бота отклонён движком; сообщите администратору.
error-internal = Внутренняя ошибка CRM; попробуйте позже.
error-unreachable = CRM сейчас недоступна; попробуйте через минуту.
error-decode = CRM ответила так, что бот не понимает ответа; сообщите администратору.

## Кто может говорить с ботом

refusal-unknown-user = Извините, это закрытый бот CRM, и я вас пока не знаю. Если вы работаете в этой команде, попросите у администратора код приглашения и отправьте /start КОД.
refusal-group = Я работаю только в личных чатах: то, что я показываю из CRM, предназначено тому, кто спросил. Откройте чат со мной и отправьте команду там.
refusal-group-button = Этот чат не обслуживается; используйте личный чат.
start-hello =
    Здравствуйте, { $name }! Вы вошли как { $role }.

    { $help }
start-welcome =
    Добро пожаловать, { $name }! Приглашение принято; ваша роль в этой CRM — { $role }.

    { $help }
invite-code-malformed = Этот код приглашения недействителен. Проверьте его и снова отправьте /start КОД.
invite-code-invalid = Этот код приглашения недействителен, истёк или уже использован. Попросите у администратора новый.
invite-private-only = Коды приглашений выдаются только в личном чате со мной: в этом чате код увидят все.
invite-usage = Использование: /invite admin|manager|viewer — например /invite manager
invite-admins-only = ⛔ Приглашать могут только администраторы.
invite-expires = Он истекает { $when }.
invite-created =
    Приглашение с ролью «{ $role }» создано. Новый пользователь отправляет боту:
    /start { $code }
    Код действует один раз.{ $expiry }
invite-created-link =
    Приглашение с ролью «{ $role }» создано. Новый пользователь открывает ссылку:
    { $link }
    или отправляет боту:
    /start { $code }
    Код действует один раз.{ $expiry }
role-admin = администратор
role-manager = менеджер
role-viewer = наблюдатель
role-read-only = ⛔ Ваша роль ({ $role }) может читать CRM, но не изменять её.

## /settings

settings-usage =
    Изменить их:
    /settings zone Europe/Moscow — ваш часовой пояс IANA (в нём вводятся и показываются сроки)
    /settings remind 15 — за сколько минут до срока задачи приходит напоминание (0: в момент срока)
    /settings language en — язык, на котором я пишу: en, ru или auto (язык вашего приложения Telegram)
settings-remind-invalid = Введите число минут целым числом от 0 до { $max } (неделя), например /settings remind 15
settings-language-invalid = Я пишу на en (английском) и ru (русском): например /settings language en или /settings language auto, чтобы следовать языку приложения Telegram.
settings-saved = ✅ Сохранено.
settings-summary =
    ⚙️ Ваши настройки
    🕒 Часовой пояс: { $zone } (сейчас там { $now })
    ⏰ Напоминания о задачах: { $remind }
    🌐 Язык: { $language }
settings-remind-at-due = в момент срока
settings-remind-before =
    за { $minutes } { $minutes ->
        [one] минуту
        [few] минуты
       *[many] минут
    } до срока
settings-language-set = { $language }
settings-language-auto = { $language } (язык вашего приложения Telegram)
language-en = английский
language-ru = русский

## Записи: карточки, списки, поиск

ref-contact = контакт #{ $id }
ref-company = компания #{ $id }
ref-deal = сделка #{ $id }
ref-task = задача #{ $id }
ref-stage = этап #{ $id }
card-people = Люди: { $names }
card-expected-close = 📅 ожидаемое закрытие { $date }
deal-status-open = открыта
deal-status-won = выиграна
deal-status-lost = проиграна
task-line-due = { $mark } { $title } — срок { $due }
button-note = 📝 Заметка
button-edit = ✏️ Изменить
button-done = ✅ Готово
button-previous = ◀ Назад
button-next = Далее ▶
find-usage = Использование: /find ТЕКСТ — например /find Анна, /find acme. Опечатки не страшны.
find-too-long = Текст поиска слишком длинный; не больше { $max } символов.
find-nothing = По запросу «{ $text }» ничего не найдено.
find-found = Найдено по запросу «{ $text }»:
list-empty =
    { $kind ->
        [contact] Контактов
        [company] Компаний
        [task] Задач
       *[deal] Сделок
    } пока нет.
list-no-more =
    Больше { $kind ->
        [contact] контактов
        [company] компаний
        [task] задач
       *[deal] сделок
    } нет.
list-expired = Срок действия списка истёк; отправьте команду ещё раз.
list-title =
    Новые { $kind ->
        [contact] контакты
        [company] компании
        [task] задачи
       *[deal] сделки
    } (нажмите, чтобы открыть):
list-title-page =
    Новые { $kind ->
        [contact] контакты
        [company] компании
        [task] задачи
       *[deal] сделки
    }, страница { $page } (нажмите, чтобы открыть):
record-gone =
    { $kind ->
        [contact] Этого контакта
        [company] Этой компании
        [task] Этой задачи
       *[deal] Этой сделки
    } больше нет.
note-usage = Использование: /note contact|company|deal|task ID [ТЕКСТ] — например /note deal 12 Созвонились, хотят демо. Или откройте запись и нажмите 📝 Заметка.
note-saved = 📝 Заметка #{ $note } сохранена: { $record }.

## Диалоги добавления и изменения записей

field-name = Имя
field-email = Email
field-phone = Телефон
field-company = Компания
field-domain = Домен
field-title = Название
field-amount = Сумма
field-contact = Контакт
field-stage = Этап
field-expected-close = Ожидаемое закрытие
field-due = Срок
field-body = Текст
field-custom = Дополнительное поле
field-task = задача
field-search-text = текст поиска
form-adding-contact = добавление контакта
form-adding-company = добавление компании
form-editing-contact = изменение контакта #{ $id }
form-editing-company = изменение компании #{ $id }
form-adding-deal = добавление сделки
form-editing-deal = изменение сделки #{ $id }
form-adding-task = добавление задачи
form-note-on = заметка ({ $record })
dialogue-left = (Прервано: { $dialogue } — ничего не сохранено.)
dialogue-cancelled = Отменено: { $dialogue }. Ничего не сохранено.
nothing-to-cancel = Отменять нечего.
ask-company-name = Как называется компания?
ask-contact-name = Как зовут контакт?
ask-domain = Домен сайта? например acme.com
ask-email = Адрес email?
ask-phone = Номер телефона?
ask-company = Какая компания? Введите часть названия.
ask-task-title = Какая задача?
ask-deal-title = Как называется сделка?
ask-amount = Сумма? например 1500, 1 500,50 или 1500 EUR.
ask-contact = С каким контактом? Введите часть имени.
ask-stage = Какой этап?
ask-expected-close = Ожидаемая дата закрытия? например 2026-12-01, завтра или +30.
ask-due = Когда срок? например сегодня, завтра или 2026-12-01 09:30 (ваше время; /settings показывает ваш пояс).
ask-note = Введите заметку.
ask-custom = Какое значение?
ask-custom-text = { $label }?
ask-custom-number = { $label }? Число, например 42 или 3.5.
ask-custom-money = { $label }? Сумма, например 1500, 1 500,50 или 1500 EUR.
ask-custom-date = { $label }? Дата, например 2026-12-01, завтра или +30.
ask-custom-pick = { $label }? Выберите вариант.
yes = Да
no = Нет
form-skip-hint = Отправьте -, чтобы пропустить.
form-cancel-hint = (/cancel — выйти без сохранения.)
form-edit-which-field = Изменение «{ $title }». Какое поле? (/cancel — остановиться)
form-pick-field = Выберите поле кнопками выше или отправьте /cancel.
form-pick-stage = Выберите этап кнопками выше или отправьте /cancel.
form-custom-required = Поле «{ $label }» обязательно: введите значение или отправьте /cancel.
form-custom-number = Поле «{ $label }» — число, например 42 или 3,5.
form-custom-yes-no = Поле «{ $label }»: ответьте да или нет.
form-custom-choice = Поле «{ $label }» — одно из: { $choices }.
form-custom-text = Поле «{ $label }» — не больше { $max } символов.
form-custom-money = Поле «{ $label }»: { $error }
form-lookup-none = Ничего не найдено (поле «{ $what }») по запросу «{ $text }». Введите другое имя или отправьте -, чтобы пропустить.
form-lookup-several = Подходит несколько вариантов (поле «{ $what }»). Какой именно? (Или введите другое имя, или -, чтобы пропустить.)
form-stale-button = Эта кнопка относится к завершённому диалогу.
form-refused = CRM не приняла поле «{ $field }»: { $message }
form-conflict-email = { $error } Попробуйте другой email.
form-not-saved =
    { $error }
    Ничего не сохранено.
contact-added = ✅ Контакт добавлен.
contact-updated = ✅ Контакт изменён.
company-added = ✅ Компания добавлена.
company-updated = ✅ Компания изменена.
deal-added = ✅ Сделка добавлена.
deal-updated = ✅ Сделка изменена.
task-added = ✅ Задача добавлена: { $task }
task-needs-fields = Добавляю задачу «{ $title }»; сначала нужны её обязательные поля.
invalid-name-empty = Поле «{ $what }» не может быть пустым. Пожалуйста, введите значение.
invalid-name-long = Поле «{ $what }» длиной { $len } символов; максимум { $max }. Пожалуйста, сократите.
invalid-name-nul = Поле «{ $what }» содержит символ, который CRM не может сохранить (NUL). Пожалуйста, введите ещё раз.
invalid-body-empty = Текст не может быть пустым.
invalid-body-long = Текст длиной { $len } символов; максимум { $max }.
invalid-body-nul = Текст содержит символ, который CRM не может сохранить (NUL).
invalid-email-long = Адрес email длиной { $len } символов; максимум { $max }. Отправьте -, чтобы пропустить.
invalid-email = «{ $text }» — не адрес email. Например ann@example.com, или отправьте -, чтобы пропустить.
invalid-phone = Это не номер телефона. Используйте цифры, пробелы и + - ( ) . (не больше { $max } символов), например +7 495 010 2030, или отправьте -, чтобы пропустить.
invalid-domain = Это не домен. Введите его как acme.com или отправьте -, чтобы пропустить.
invalid-date = Введите дату, например 2026-12-01, сегодня, завтра или +3 (дней от сегодня), или отправьте -, чтобы пропустить.
invalid-money = Введите сумму, например 1500, 1 500,50 или 1500 EUR.
invalid-money-currency = «{ $code }» — не код валюты ISO 4217; укажите его после суммы, например 1500 EUR.
invalid-money-default-currency = Валюта по умолчанию «{ $code }» — не код ISO 4217; укажите валюту, например 1500 EUR.
invalid-money-negative = Сумма не может быть отрицательной.
invalid-money-whole = У { $code } нет дробных единиц: введите целую сумму.
invalid-money-decimals = У { $code } не больше { $decimals ->
        [one] { $decimals } знака
       *[other] { $decimals } знаков
    } после запятой.
invalid-money-too-large = Слишком большая сумма.
# вводятся как дата, наравне с английскими словами
word-today = сегодня
word-tomorrow = завтра

## Задачи и воронка

tasks-none-today = На сегодня ничего нет. 🎉
tasks-none = У вас нет открытых задач. 🎉 Добавьте задачу командой /addtask.
tasks-today-title = На сегодня (и просроченные):
tasks-title = Ваши открытые задачи:
button-task-done = ✅ Готово: { $title }
task-done = Готово: { $title }
task-gone = Этой задачи больше нет.
pipeline-unknown = Воронки «{ $name }» нет. Воронки: { $pipelines }
pipeline-title =
    📊 { $name } — { $count } { $count ->
        [one] открытая сделка
        [few] открытые сделки
       *[many] открытых сделок
    }
pipeline-empty = Открытых сделок пока нет — добавьте сделку командой /adddeal.
pipeline-hint = Нажмите на сделку, чтобы открыть её и перевести на другой этап.
stage-empty = На этом этапе больше нет сделок.
stage-deals = Сделки на этапе «{ $stage }» ({ $count }):
deal-gone = Этой сделки больше нет.
deal-moved-to = Переведена на этап «{ $stage }»
deal-moved = Переведена.

## Сценарии, запуски, согласования, расписания

args-unreadable = { $error }. Использование: { $usage }
args-quote-open = Кавычка не закрыта
args-missing = Не хватает { $name }. Использование: { $usage }
args-bad = { $name } должен быть { $what }, а не «{ $value }». Использование: { $usage }
args-integer = целым числом
args-number = числом
args-yes-no = да или нет
args-too-many = Слишком много аргументов ({ $extra }). Использование: { $usage }
run-none-deployed = пока ни одного
run-usage = Использование: /run СЦЕНАРИЙ [АРГУМЕНТЫ]. Сценарии: { $workflows }
run-running = ⏳ Выполняется { $workflow }…
run-no-such-workflow = сценария «{ $workflow }» нет. См. /help.
run-not-started = ❌ Не удалось запустить { $workflow }: { $why }
run-retrying = Повторяю.
runs-none = Запусков сценариев пока нет. Запустите сценарий командой /run СЦЕНАРИЙ.
runs-title = Последние запуски:
runs-waits = { $step } ждёт { $what }
run-status =
    { $status ->
        [queued] в очереди
        [running] выполняется
        [waiting] ждёт
        [succeeded] успешно
        [failed] ошибка
        [cancelled] отменён
       *[other] { $status }
    }
approvals-none = Вашего решения ничего не ждёт.
approvals-waiting-here =
    Вашего решения { $count ->
        [one] ждёт { $count } согласование
        [few] ждут { $count } согласования
       *[many] ждут { $count } согласований
    }; каждое придёт ниже со своими кнопками:
approvals-waiting-private =
    Вашего решения { $count ->
        [one] ждёт { $count } согласование
        [few] ждут { $count } согласования
       *[many] ждут { $count } согласований
    }; каждое придёт в наш личный чат со своими кнопками:
approval-approved = ✅ Одобрено.
approval-rejected = ❌ Отклонено.
approval-not-yours = ⛔ Решать не вам: { $reason }
approval-decided-already = Решение уже принято; ничего не изменилось.
approval-gone = Этого согласования больше нет.
approval-ask-title = 🗳 Нужно согласование ({ $workflow })
approval-ask-deadline =
    Решите до { $deadline }; без решения будет { $on_timeout ->
        [approved] одобрено
       *[other] отклонено
    }.
approval-button-approve = ✅ Одобрить
approval-button-reject = ❌ Отклонить
approval-outcome-approved = ✅ Одобрено: { $by }, { $at }
approval-outcome-rejected = ❌ Отклонено: { $by }, { $at }
approval-outcome-timed-out =
    ⌛ Никто не решил вовремя: { $decision ->
        [approved] одобрено
       *[other] отклонено
    }, { $at }
approval-outcome-run-ended = 🚫 Больше не нужно: запуск завершился { $at }, решения не было
run-succeeded = ✅ Сценарий { $workflow } выполнен.
run-failed = ❌ Сценарий { $workflow } не выполнен: { $reason }
run-failed-at-step = ❌ Сценарий { $workflow } не выполнен на шаге { $step }: { $reason }
run-failed-no-reason = причина не указана
run-cancelled = 🚫 Сценарий { $workflow } отменён.
run-ended-as =
    Сценарий { $workflow }: { $status ->
        [queued] в очереди
        [running] выполняется
        [waiting] ждёт
        [succeeded] успешно
        [failed] ошибка
        [cancelled] отменён
       *[other] { $status }
    }.
run-retry-button = 🔁 Повторить с шага, где была ошибка
message-buttons-gone = Кнопки этого сообщения больше не работают.
press-task-done = ✅ Готово: { $title }
press-run-started = → { $label }
press-already-answered = На это уже ответили.
schedules-none = Сценариев по расписанию нет. Сценарий с cron-триггером появится здесь после развёртывания.
schedules-title = ⏰ Сценарии по расписанию (время в вашем поясе, { $zone }):
schedules-next = следующий: { $at } ({ $until })
schedules-then = затем: { $at }
schedules-never = следующий: никогда (будущих срабатываний нет)
until-now = сейчас
until-seconds = через { $s } с
until-minutes = через { $m } мин
until-hours = через { $h } ч { $m } мин
until-days = через { $d } д { $h } ч

## /web

web-link =
    🔐 Ваша ссылка для входа в веб-приложение CRM. Она работает один раз, { $minutes } мин; не пересылайте её.
    { $url }
web-open-browser = Открыть в браузере
web-open-telegram = Открыть в Telegram

## CSV-файлы

import-which-kind = Какие записи в файле { $file }? Отправьте его ещё раз с подписью contacts, companies, deals или tasks.
import-too-big = Файл { $file } больше { $mib } МиБ: разделите его на части или используйте `crm import`.
import-download-failed = Не удалось скачать файл из Telegram; отправьте его ещё раз.
import-nothing = Импортировать нечего.
button-import = Импортировать
button-cancel = Отмена
import-summary-dry =
    { $rows } { $rows ->
        [one] строка
        [few] строки
       *[many] строк
    }: будет создано { $created }, будет обновлено { $updated }, пропущено как дубликаты { $skipped }, отклонено { $rejected } (пробный прогон: ничего не записано)
import-summary =
    { $rows } { $rows ->
        [one] строка
        [few] строки
       *[many] строк
    }: создано { $created }, обновлено { $updated }, пропущено как дубликаты { $skipped }, отклонено { $rejected }
import-preview = { $file } как { $kind }: { $summary }
import-columns-read = Прочитаны столбцы: { $columns }
import-columns-ignored = Пропущены столбцы: { $columns }
import-rejected = Отклонено:
import-line = строка { $line }: { $reason }
import-more = … и ещё { $count }
import-skipped = Пропущены как дубликаты: строки { $lines }
import-preview-expired = Срок действия предпросмотра истёк; отправьте файл ещё раз.
import-importing = Импортирую { $file }…
import-done = Импортирован { $file } как { $kind }: { $summary }
import-done-notice = Импортировано
import-cancelled = Импорт { $file } отменён: ничего не импортировано.
import-cancelled-notice = Отменено
export-usage = Использование: /export contacts|companies|deals|tasks — записи CSV-файлом.
export-caption = { $kind }: записей — { $records }. Отправьте этот файл обратно, чтобы импортировать его снова.
export-failed = Telegram не принял файл; попробуйте /export ещё раз.

## Карточки и удаление

card-deals = 💼 Сделки:
card-people-title = 👤 Люди:
card-open-tasks = ⬜ Открытые задачи:
card-last-notes = 📝 Последние заметки:
card-recent-activity = 🕘 Последние изменения:
card-task-due = { $title } — срок { $due }
card-about = Относится к: { $record }
ref-user = пользователь #{ $id }
actor-workflow = сценарий
actor-system = система
activity-moved-to = переведена на этап «{ $stage }»
activity-changed = изменено: { $fields }
activity-action =
    { $action ->
        [created] создано
        [updated] изменено
        [deleted] удалено
        [moved] переведено
        [completed] выполнено
       *[other] { $action }
    }
button-delete = 🗑 Удалить
button-keep = ✖️ Отмена
delete-usage = Использование: /delete contact|company|deal|task ID — например /delete deal 12. Сначала нужно подтвердить; или откройте запись и нажмите 🗑 Удалить.
delete-role-refused = ⛔ Ваша роль ({ $role }) не может удалять записи: это могут менеджеры и администраторы. Попросите кого-то из них, если запись нужно удалить.
delete-no-such = { $record } не найдено (возможно, уже удалено).
delete-ask = 🗑 Удалить { $record } «{ $name }»?
delete-only-asker-answers = Ответить может только { $name }.
delete-not-the-asker = ⛔ Ответить может только тот, кто попросил удалить.
delete-kept = { $record }: ничего не удалено.
delete-cancelled = Отменено.
delete-done = 🗑 Удалено: { $record } «{ $name }».
delete-done-notice = Удалено: { $record }.
delete-already = { $record }: уже удалено.
delete-already-notice =
    { $kind ->
        [contact] Этот контакт уже удалён.
        [company] Эта компания уже удалена.
        [task] Эта задача уже удалена.
       *[deal] Эта сделка уже удалена.
    }
