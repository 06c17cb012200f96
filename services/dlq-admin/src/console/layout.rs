//! The page shell: head, navigation, who is logged in, logout. Every read
//! page is complete HTML that works without JavaScript; `console.js` only
//! adds confirm dialogs and the overview's auto-refresh.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::console::session::ConsoleUser;

/// The navigation entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Jobs,
    DeadLetters,
    Tickets,
    Audit,
    None,
}

const ENTRIES: [(Nav, &str, &str); 5] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Jobs, "/jobs", "Jobs"),
    (Nav::DeadLetters, "/dead-letters", "Dead letters"),
    (Nav::Tickets, "/tickets", "Tickets"),
    (Nav::Audit, "/audit", "Audit log"),
];

fn head(title: &str, refresh_seconds: Option<u32>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            link rel="stylesheet" href="/console/static/console.css";
            @if let Some(s) = refresh_seconds {
                // Without JavaScript the page still refreshes itself.
                noscript { meta http-equiv="refresh" content=(s); }
            }
            script src="/console/static/console.js" defer {}
        }
    }
}

/// A page for a logged-in user.
pub fn page(title: &str, user: &ConsoleUser, active: Nav, body: Markup) -> Markup {
    page_with_refresh(title, user, active, None, body)
}

pub fn page_with_refresh(
    title: &str,
    user: &ConsoleUser,
    active: Nav,
    refresh_seconds: Option<u32>,
    body: Markup,
) -> Markup {
    let full_title = format!("{title} · docflow console");
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&full_title, refresh_seconds))
            body data-refresh-seconds=[refresh_seconds] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "docflow" }
                    nav aria-label="Main" {
                        ul {
                            @for (nav, href, label) in ENTRIES {
                                li {
                                    @if nav == active {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span.role data-role=(role_name(user)) title=(user.actor) { (role_name(user)) " · " (user.actor) }
                        form method="post" action="/logout" {
                            (csrf_field(user))
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}

fn role_name(user: &ConsoleUser) -> &'static str {
    if user.can_write() { "write" } else { "read-only" }
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare { main #main { (body) } }
        }
    }
}

/// The hidden CSRF input every form carries.
pub fn csrf_field(user: &ConsoleUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// The required reason every change asks for.
pub fn reason_field(id: &str) -> Markup {
    html! {
        label for=(id) { "Reason" }
        input #(id) type="text" name="reason" required minlength="1" maxlength="1000"
            placeholder="why (kept in the audit log)" autocomplete="off";
    }
}

/// A notice at the top of a page after a change.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text { p.notice role="status" { (t) } }
    }
}

/// Short time for tables: `2026-12-01 10:04:05 UTC`.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// Milliseconds for people.
pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v >= 10_000.0 => format!("{:.1} s", v / 1000.0),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

pub fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1} %"))
}

/// Inline SVG, already built by [`crate::console::svg`].
pub fn svg(markup: String) -> Markup {
    PreEscaped(markup)
}
