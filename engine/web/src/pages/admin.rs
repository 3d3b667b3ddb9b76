//! Admin pages: users and their roles, invites (create, revoke) and API tokens (create,
//! revoke). The same store calls and the same rule as the API: admins only.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Duration;
use crm_concepts::records::Id;
use crm_concepts::user::{NewUser, Role};
use crm_store::{invites, tokens, users};
use maud::{Markup, html};
use serde::Deserialize;

use super::parts::People;
use crate::auth::{self, Me};
use crate::error::WebError;
use crate::forms::{self, Problems};
use crate::layout::{self, Section};
use crate::{WebState, display, today};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/users", get(user_list).post(create_user))
        .route("/admin/users/{id}/role", post(set_role))
        .route("/admin/invites", get(invite_list).post(create_invite))
        .route("/admin/invites/{id}/revoke", post(revoke_invite))
        .route("/admin/tokens", get(token_list).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
}

const ROLES: [Role; 3] = [Role::Admin, Role::Manager, Role::Viewer];

fn tabs(current: &str) -> Markup {
    html! {
        nav.tabs aria-label="Admin" {
            @for (href, label) in [("/admin/users", "Users"), ("/admin/invites", "Invites"), ("/admin/tokens", "API tokens")] {
                a href=(href) aria-current=[(href == current).then_some("page")] { (label) }
            }
        }
    }
}

fn role_options() -> Vec<(String, String)> {
    ROLES.iter().map(|r| (r.as_str().to_string(), r.as_str().to_string())).collect()
}

#[derive(Debug, Default, Deserialize)]
struct UserForm {
    name: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

async fn user_list(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    me.require_admin()?;
    users_page(&s, &me, &UserForm::default(), &Problems::default()).await
}

async fn users_page(s: &WebState, me: &Me, f: &UserForm, problems: &Problems) -> Result<Response, WebError> {
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        h1 { "Admin" }
        (tabs("/admin/users"))
        table.records id="users" {
            thead { tr { th { "Name" } th { "Email" } th { "Telegram" } th { "Since" } th { "Role" } } }
            tbody {
                @for u in &people.users {
                    tr.disabled[u.disabled_at.is_some()] {
                        td { (u.name) @if u.disabled_at.is_some() { " (disabled)" } }
                        td { (u.email.as_deref().unwrap_or_default()) }
                        td { @if let Some(tg) = u.telegram_user_id { (tg) } @else { span.muted { "not linked" } } }
                        td { (display::when(u.created_at, zone)) }
                        td {
                            form.inline method="post" action={"/admin/users/" (u.id) "/role"} {
                                (forms::csrf(me.csrf()))
                                select name="role" aria-label={"Role of " (u.name)} {
                                    @for r in ROLES { option value=(r.as_str()) selected[r == u.role] { (r.as_str()) } }
                                }
                                button type="submit" { "Set" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a user" }
        (problems.summary(&["name", "email", "role"]))
        form.record method="post" action="/admin/users" novalidate {
            (forms::csrf(me.csrf()))
            (forms::input("Name", "name", "text", &v(&f.name), problems, true))
            (forms::input("Email", "email", "email", &v(&f.email), problems, false))
            (forms::select("Role", "role", &role_options(), f.role.as_deref().unwrap_or("manager"), None, problems))
            button type="submit" { "Add user" }
        }
        p.hint { "A new user signs in with an API token (below) or through Telegram after redeeming an invite." }
    };
    Ok(layout::page(me, "Users", Section::Admin, body))
}

fn parse_role(text: Option<&str>, problems: &mut Problems) -> Role {
    match text.unwrap_or_default().parse::<Role>() {
        Ok(r) => r,
        Err(e) => {
            problems.add("role", e.to_string());
            Role::Viewer
        }
    }
}

async fn create_user(State(s): State<WebState>, me: Me, Form(f): Form<UserForm>) -> Result<Response, WebError> {
    me.require_admin()?;
    let mut problems = Problems::default();
    let role = parse_role(f.role.as_deref(), &mut problems);
    let new = NewUser {
        name: f.name.clone().unwrap_or_default(),
        email: forms::text(&f.email),
        role,
        telegram_user_id: None,
        time_zone: None,
    };
    if problems.is_empty() {
        match users::create(&s.db, &me.actor(), new).await {
            Ok(u) => return Ok(auth::see_other("/admin/users", Some(&format!("Added {} ({}).", u.name, u.role)))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let page = users_page(&s, &me, &f, &problems).await?;
    Ok(super::invalid(page))
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    role: String,
}

async fn set_role(
    State(s): State<WebState>,
    me: Me,
    Path(id): Path<Id>,
    Form(f): Form<RoleForm>,
) -> Result<Response, WebError> {
    me.require_admin()?;
    let role: Role =
        f.role.parse().map_err(|e: crm_concepts::user::UnknownRole| WebError::BadRequest(e.to_string()))?;
    if id == me.user().id && role != Role::Admin {
        return Err(WebError::Conflict("You cannot take the admin role from yourself; ask another admin.".into()));
    }
    let u = users::set_role(&s.db, &me.actor(), id, role).await?;
    Ok(auth::see_other("/admin/users", Some(&format!("{} is {} now.", u.name, u.role))))
}

async fn invite_list(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    me.require_admin()?;
    invites_page(&s, &me, None).await
}

async fn invites_page(s: &WebState, me: &Me, new_code: Option<(String, Role)>) -> Result<Response, WebError> {
    let all = invites::list(&s.db, 200).await?;
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let now = chrono::Utc::now();
    let body = html! {
        h1 { "Admin" }
        (tabs("/admin/invites"))
        @if let Some((code, role)) = &new_code {
            div.secret role="status" {
                p { "A " (role) " invite. Give the new person this code (shown once); they send it to the bot:" }
                pre #invite-code { "/start " (code) }
            }
        }
        form.inline method="post" action="/admin/invites" {
            (forms::csrf(me.csrf()))
            label for="invite-role" { "New invite for a " }
            select id="invite-role" name="role" { @for r in ROLES { option value=(r.as_str()) selected[r == Role::Manager] { (r.as_str()) } } }
            " valid for "
            select name="days" aria-label="Days valid" { @for d in [1, 7, 30] { option value=(d) selected[d == 7] { (d) " days" } } }
            " "
            button type="submit" { "Create invite" }
        }
        table.records id="invites" {
            thead { tr { th { "#" } th { "Role" } th { "By" } th { "Expires" } th { "State" } th {} } }
            tbody {
                @for i in &all {
                    @let open = i.redeemed_at.is_none() && i.expires_at > now;
                    tr {
                        td { (i.id) }
                        td { (i.role) }
                        td { (people.name(i.created_by)) }
                        td { (display::when(i.expires_at, zone)) }
                        td {
                            @if i.redeemed_at.is_some() { "used by " (people.name(i.redeemed_by)) }
                            @else if open { "open" } @else { "expired or revoked" }
                        }
                        td {
                            @if open {
                                form.inline method="post" action={"/admin/invites/" (i.id) "/revoke"} {
                                    (forms::csrf(me.csrf()))
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(me, "Invites", Section::Admin, body))
}

#[derive(Debug, Deserialize)]
struct InviteForm {
    role: String,
    days: Option<i64>,
}

async fn create_invite(State(s): State<WebState>, me: Me, Form(f): Form<InviteForm>) -> Result<Response, WebError> {
    me.require_admin()?;
    let role: Role =
        f.role.parse().map_err(|e: crm_concepts::user::UnknownRole| WebError::BadRequest(e.to_string()))?;
    let ttl = Duration::days(f.days.unwrap_or(7));
    let created = invites::create(&s.db, &me.actor(), role, ttl).await?;
    invites_page(&s, &me, Some((created.code, role))).await
}

async fn revoke_invite(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    me.require_admin()?;
    invites::revoke(&s.db, id).await?;
    Ok(auth::see_other("/admin/invites", Some(&format!("Invite {id} revoked."))))
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    user: Option<Id>,
}

async fn token_list(State(s): State<WebState>, me: Me, Query(q): Query<TokenQuery>) -> Result<Response, WebError> {
    me.require_admin()?;
    tokens_page(&s, &me, q.user.unwrap_or(me.user().id), None).await
}

async fn tokens_page(s: &WebState, me: &Me, user_id: Id, secret: Option<String>) -> Result<Response, WebError> {
    let owner = users::get(&s.db, user_id).await?;
    let all = tokens::list(&s.db, user_id).await?;
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let body = html! {
        h1 { "Admin" }
        (tabs("/admin/tokens"))
        form.inline method="get" action="/admin/tokens" {
            label for="token-user" { "Tokens of " }
            select id="token-user" name="user" { @for u in &people.users { option value=(u.id) selected[u.id == user_id] { (u.name) } } }
            " " button type="submit" { "Show" }
        }
        @if let Some(secret) = &secret {
            div.secret role="status" {
                p { "The new token for " (owner.name) " (shown once; store it now):" }
                pre #new-token { (secret) }
            }
        }
        table.records id="tokens" {
            thead { tr { th { "#" } th { "Name" } th { "Created" } th { "Last used" } th { "State" } th {} } }
            tbody {
                @for t in &all {
                    tr {
                        td { (t.id) }
                        td { (t.name) }
                        td { (display::when(t.created_at, zone)) }
                        td { (display::when_opt(t.last_used_at, zone)) }
                        td { @if t.revoked_at.is_some() { "revoked" } @else { "live" } }
                        td {
                            @if t.revoked_at.is_none() {
                                form.inline method="post" action={"/admin/tokens/" (t.id) "/revoke"} {
                                    (forms::csrf(me.csrf()))
                                    input type="hidden" name="user" value=(user_id);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "New token for " (owner.name) }
        form.inline method="post" action="/admin/tokens" {
            (forms::csrf(me.csrf()))
            input type="hidden" name="user" value=(user_id);
            label for="token-name" { "Name " }
            input id="token-name" name="name" type="text" required placeholder="e.g. laptop";
            " " button type="submit" { "Create token" }
        }
    };
    Ok(layout::page(me, "API tokens", Section::Admin, body))
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    user: Id,
    name: String,
}

async fn create_token(State(s): State<WebState>, me: Me, Form(f): Form<TokenForm>) -> Result<Response, WebError> {
    me.require_admin()?;
    let (_, secret) = tokens::create(&s.db, f.user, f.name.trim()).await?;
    tokens_page(&s, &me, f.user, Some(secret)).await
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    user: Option<Id>,
}

async fn revoke_token(
    State(s): State<WebState>,
    me: Me,
    Path(id): Path<Id>,
    Form(f): Form<RevokeForm>,
) -> Result<Response, WebError> {
    me.require_admin()?;
    tokens::revoke(&s.db, id).await?;
    let back = match f.user {
        Some(u) => format!("/admin/tokens?user={u}"),
        None => "/admin/tokens".into(),
    };
    Ok(auth::see_other(&back, Some(&format!("Token {id} revoked."))))
}
