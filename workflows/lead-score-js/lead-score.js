// Lead scoring, in JavaScript: the same step as `workflows/lead-score` (Rust), on the JS
// SDK. Same input, config, capabilities and output; `engine/cli/tests/languages.rs` runs the
// three versions on the same fixtures and checks they agree.

import { DAY_MS, Output, StepError, formatMoney, info, nowMs, records, step } from './.crm/sdk-js/crm-sdk.js';

const DEFAULTS = { contact_id: null, recent_days: 30, hot_at: 70, warm_at: 40, branches: null, write_back: false };

function configOf(input) {
  const given = input.configObject();
  const unknown = Object.keys(given).filter((k) => !(k in DEFAULTS)).sort();
  if (unknown.length > 0) throw StepError.invalidInput(`step config: unknown field \`${unknown[0]}\``);
  const config = { ...DEFAULTS };
  for (const [k, v] of Object.entries(given)) if (v !== null && v !== undefined) config[k] = v;
  return config;
}

export const run = step((input) => {
  const config = configOf(input);
  const contactId = config.contact_id ?? input.runInputField('contact_id');
  if (!Number.isInteger(contactId)) throw StepError.invalidInput('run input field `contact_id`: expected an integer');
  if (config.warm_at > config.hot_at) throw StepError.invalidInput('`warm_at` must not be above `hot_at`');
  const contact = records.getContact(contactId);
  const now = nowMs();
  const recentDays = config.recent_days;
  const recentSince = now - Math.max(recentDays, 0) * DAY_MS;
  const reasons = [];
  const add = (points, why) => {
    if (points !== 0) reasons.push({ points, why });
  };

  // Reachability: a lead nobody can contact is worth little, whatever else is true.
  if (contact.email !== undefined && contact.email !== null) add(10, 'has an email address');
  if (contact.phone !== undefined && contact.phone !== null) add(5, 'has a phone number');
  if (contact.companyId !== undefined && contact.companyId !== null) add(10, 'works at a known company');

  const deals = records.findDeals({ contactId, limit: 200 });
  const open = deals.filter((d) => d.status === 'open');
  const won = deals.filter((d) => d.status === 'won').length;
  const lost = deals.filter((d) => d.status === 'lost').length;
  add(15 * Math.min(open.length, 3), `${open.length} open deal(s)`);
  // One point per 1,000.00 of open pipeline, capped so one huge deal cannot make a lead
  // hot on its own.
  const openValue = open.reduce((sum, d) => sum + d.amountMinor, 0);
  const currency = open.length > 0 ? open[0].currency : 'USD';
  add(Math.min(Math.floor(openValue / 100_000), 25), `open pipeline worth ${formatMoney(openValue, currency)}`);
  add(20 * Math.min(won, 2), `${won} won deal(s): an existing customer`);
  add(-10 * Math.min(lost, 3), `${lost} lost deal(s)`);
  const moving = open.filter((d) => d.stageChangedAt >= recentSince).length;
  add(5 * Math.min(moving, 3), `${moving} deal(s) moved stage in the last ${recentDays} days`);

  const activity = records.recordActivity('contact', contactId, 200);
  const recentActivity = activity.filter((a) => a.at >= recentSince).length;
  add(Math.min(2 * recentActivity, 20), `${recentActivity} change(s) in the last ${recentDays} days`);

  const notes = records.findNotes({ contactId, limit: 200 });
  const recentNotes = notes.filter((n) => n.createdAt >= recentSince).length;
  add(Math.min(3 * recentNotes, 15), `${recentNotes} recent note(s)`);

  const tasks = records.findTasks({ contactId, done: false, limit: 200 });
  const overdue = tasks.filter((t) => t.dueAt !== undefined && t.dueAt !== null && t.dueAt < now).length;
  add(-5 * Math.min(overdue, 4), `${overdue} overdue task(s)`);

  const total = Math.max(0, Math.min(100, reasons.reduce((sum, r) => sum + r.points, 0)));
  const grade = total >= config.hot_at ? 'hot' : total >= config.warm_at ? 'warm' : 'cold';
  info('lead scored', { contact_id: contactId, score: total, grade });

  if (config.write_back) records.updateContact(contactId, { custom: { lead_score: total, lead_grade: grade } });

  const output = Output.json({ contact_id: contactId, name: contact.name, score: total, grade, reasons });
  return config.branches === null ? output : output.withNext(config.branches[grade] ?? []);
});
