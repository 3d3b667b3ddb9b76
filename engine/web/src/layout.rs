//! The frame of every page: navigation, the signed-in user, the flash message, and the
//! links to the one stylesheet and the one script.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::assets;
use crate::auth::Me;
use crate::forms;

/// The section a page belongs to, highlighted in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Contacts,
    Companies,
    Deals,
    Board,
    Tasks,
    Workflows,
    Runs,
    Approvals,
    Schedules,
    Notifications,
    Admin,
}

const SECTIONS: &[(Section, &str, &str)] = &[
    (Section::Home, "/", "Today"),
    (Section::Contacts, "/contacts", "Contacts"),
    (Section::Companies, "/companies", "Companies"),
    (Section::Deals, "/deals", "Deals"),
    (Section::Board, "/board", "Board"),
    (Section::Tasks, "/tasks", "Tasks"),
    (Section::Workflows, "/workflows", "Workflows"),
    (Section::Runs, "/runs", "Runs"),
    (Section::Approvals, "/approvals", "Approvals"),
    (Section::Schedules, "/schedules", "Schedules"),
    (Section::Notifications, "/notifications", "Notifications"),
];

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(token) = csrf { meta name="csrf-token" content=(token); }
            title { (title) " · crm" }
            link rel="icon" href=(assets::icon_url()) type="image/svg+xml";
            link rel="stylesheet" href=(assets::css_url());
            script src=(assets::js_url()) defer {}
        }
    }
}

/// A page for a signed-in user.
pub fn page(me: &Me, title: &str, section: Section, body: Markup) -> Response {
    let user = me.user();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(me.csrf())))
            body {
                header.top {
                    a.brand href="/" { "crm" }
                    nav aria-label="Sections" {
                        @for (s, href, label) in SECTIONS {
                            a href=(href) aria-current=[(*s == section).then_some("page")] { (label) }
                        }
                        @if me.is_admin() {
                            a href="/admin/users" aria-current=[(section == Section::Admin).then_some("page")] { "Admin" }
                        }
                        a href="/api/docs" { "API docs" }
                    }
                    div.me {
                        span.user-name { (user.name) }
                        " "
                        span.role.{"role-" (user.role)} { (user.role) }
                        form.inline method="post" action="/sign-out" {
                            (forms::csrf(me.csrf()))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    @if let Some(message) = &me.flash { p.flash role="status" { (message) } }
                    div.notice hidden role="alert" id="notice" {}
                    (body)
                }
                footer {
                    "Times are in " (crate::today::zone_of(user)) ". "
                    a href="/api/docs" { "The API" } " does everything this app does."
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A page without navigation: sign-in and errors.
pub fn bare(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare {
                main id="main" { (body) }
            }
        }
    };
    Html(markup.into_string())
}

/// [`bare`] with a CSRF token for the page's scripts (the Mini App's sign-in).
pub fn bare_with_token(title: &str, token: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(token)))
            body.bare {
                main id="main" { (body) }
            }
        }
    };
    Html(markup.into_string())
}
