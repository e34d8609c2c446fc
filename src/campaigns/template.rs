//! Personalisation (docs/rules/campaigns.md, "Personalisation"): a campaign's content is a
//! minijinja template rendered once per recipient. The engine is sandboxed — no includes, no
//! imports, no macros, a few filters and tests, a fuel limit on every render and a cap on the
//! output — so a template can neither read anything but the contact nor run away.
//!
//! Every problem is found when the campaign is saved, never at send: a syntax error, an unknown
//! variable (a typo in `contact.frist_name`, a custom field that does not exist), an unknown
//! filter, each named with its line and column.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// The instructions one render may run: far more than any real template needs (a message with
/// twenty variables and filters uses a few hundred), far less than a runaway loop.
const FUEL_PER_RENDER: u64 = 20_000;
/// Nesting of blocks and expressions.
const RECURSION_LIMIT: usize = 32;

/// The contact variables every template may name, beside `contact.custom.<key>` for each custom
/// field the workspace defines, and `unsubscribe_url`.
pub const CONTACT_VARIABLES: &[&str] = &[
    "name",
    "first_name",
    "last_name",
    "phone",
    "email",
    "language",
];

/// How a part is written: HTML parts escape what the variables hold; SMS text, subjects and
/// plain-text parts never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    Html,
    None,
}

/// What a template sees of a recipient. An absent value is left out (undefined), so that
/// `default` replaces it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContactContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Custom values by key; a key without a value is absent.
    pub custom: BTreeMap<String, serde_json::Value>,
}

impl ContactContext {
    /// The contact a preview uses when none is named, and the checks render for: every
    /// built-in value, no custom value.
    pub fn sample() -> ContactContext {
        ContactContext {
            name: Some("Ada Lovelace".to_owned()),
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            phone: Some("+237677123456".to_owned()),
            email: Some("ada@example.com".to_owned()),
            language: Some("en".to_owned()),
            custom: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    contact: &'a ContactContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribe_url: Option<&'a str>,
}

/// The sandboxed engine, built per use (cheap): no loader (so no include, import or extends),
/// no globals (no `range`, no `namespace`), the filters `default` (alias `d`), `upper`, `lower`,
/// `title`, `capitalize`, `trim`, `replace`, and the tests `defined`, `undefined`, `none`.
fn environment(escaping: Escaping) -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_fuel(Some(FUEL_PER_RENDER));
    env.set_recursion_limit(RECURSION_LIMIT);
    // Absent values print as nothing; `contact.custom.x.y` on an absent `x` is absent too.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(move |_| match escaping {
        Escaping::Html => AutoEscape::Html,
        Escaping::None => AutoEscape::None,
    });
    env.add_filter("default", minijinja::filters::default);
    env.add_filter("d", minijinja::filters::default);
    env.add_filter("upper", minijinja::filters::upper);
    env.add_filter("lower", minijinja::filters::lower);
    env.add_filter("title", minijinja::filters::title);
    env.add_filter("capitalize", minijinja::filters::capitalize);
    env.add_filter("trim", minijinja::filters::trim);
    env.add_filter("replace", minijinja::filters::replace);
    env.add_test("defined", minijinja::tests::is_defined);
    env.add_test("undefined", minijinja::tests::is_undefined);
    env.add_test("none", minijinja::tests::is_none);
    env
}

/// A template problem, for a 422 on the part's field: what is wrong and where (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

/// "line L, column C" of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> String {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}")
}

fn engine_error(source: &str, err: &minijinja::Error) -> TemplateError {
    let what = err
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| err.kind().to_string());
    let at = match (err.range(), err.line()) {
        (Some(range), _) => format!(" at {}", position(source, range.start)),
        (None, Some(line)) => format!(" at line {line}"),
        (None, None) => String::new(),
    };
    TemplateError(format!("{what}{at}"))
}

/// Whether `variable` (a dotted path as minijinja reports it) is one a template may use.
fn is_known(variable: &str, custom_keys: &[&str]) -> bool {
    let mut parts = variable.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("unsubscribe_url"), None, _, _) => true,
        (Some("contact"), None, _, _) => true,
        (Some("contact"), Some("custom"), None, _) => true,
        (Some("contact"), Some("custom"), Some(key), None) => custom_keys.contains(&key),
        (Some("contact"), Some(field), None, _) => CONTACT_VARIABLES.contains(&field),
        _ => false,
    }
}

/// Where `variable` first appears in `source` (its dotted text, or its last part).
fn find_variable(source: &str, variable: &str) -> Option<usize> {
    source
        .find(variable)
        .or_else(|| source.find(variable.rsplit('.').next().unwrap_or(variable)))
}

/// Checks a template: it parses, names only known variables, filters and tests, and renders
/// for a contact with every value and for one with none. `custom` holds the workspace's custom
/// field keys, each with a value of its type (`FieldType::sample`). The first problem is
/// returned.
pub fn check(
    source: &str,
    escaping: Escaping,
    custom: &[(&str, serde_json::Value)],
) -> Result<(), TemplateError> {
    let custom_keys: Vec<&str> = custom.iter().map(|(key, _)| *key).collect();
    let custom_keys = custom_keys.as_slice();
    let env = environment(escaping);
    let template = env
        .template_from_str(source)
        .map_err(|err| engine_error(source, &err))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|variable| !is_known(variable, custom_keys))
        .collect();
    unknown.sort_by_key(|variable| find_variable(source, variable).unwrap_or(usize::MAX));
    if let Some(variable) = unknown.first() {
        let at = find_variable(source, variable)
            .map(|offset| format!(" at {}", position(source, offset)))
            .unwrap_or_default();
        return Err(TemplateError(format!(
            "unknown variable `{variable}`{at}; known: contact.{}, contact.custom.<key> of a \
             defined custom field, unsubscribe_url",
            CONTACT_VARIABLES.join(", contact.")
        )));
    }
    let full = ContactContext {
        custom: custom
            .iter()
            .map(|(key, sample)| ((*key).to_owned(), sample.clone()))
            .collect(),
        ..ContactContext::sample()
    };
    for contact in [&full, &ContactContext::default()] {
        render_with(&env, source, contact, Some("https://example.com/u/token"))?;
    }
    Ok(())
}

/// The most a rendered part may hold; a template that would write more fails.
pub const MAX_RENDERED_BYTES: usize = 512 * 1024;

fn render_with(
    env: &Environment<'_>,
    source: &str,
    contact: &ContactContext,
    unsubscribe_url: Option<&str>,
) -> Result<String, TemplateError> {
    let template = env
        .template_from_str(source)
        .map_err(|err| engine_error(source, &err))?;
    let rendered = template
        .render(Context {
            contact,
            unsubscribe_url,
        })
        .map_err(|err| engine_error(source, &err))?;
    within_limit(rendered)
}

/// A rendered part, if it is not longer than `MAX_RENDERED_BYTES`.
fn within_limit(rendered: String) -> Result<String, TemplateError> {
    if rendered.len() > MAX_RENDERED_BYTES {
        return Err(TemplateError(format!(
            "renders to more than {} KiB",
            MAX_RENDERED_BYTES / 1024
        )));
    }
    Ok(rendered)
}

/// Renders a checked template for one recipient.
pub fn render(
    source: &str,
    escaping: Escaping,
    contact: &ContactContext,
    unsubscribe_url: Option<&str>,
) -> Result<String, TemplateError> {
    render_with(&environment(escaping), source, contact, unsubscribe_url)
}

/// A campaign's parts compiled once and rendered for many recipients (a fan-out renders
/// thousands): one sandboxed engine holding each part under its name; the part named `html`
/// is HTML-escaped, the others are not.
pub struct Compiled {
    env: Environment<'static>,
}

/// The name under which `Compiled` keeps the part that is HTML-escaped.
pub const HTML_PART: &str = "html";

impl Compiled {
    /// Compiles `parts` (name, source). A syntax error names the part's problem and position.
    pub fn new(parts: &[(&'static str, &str)]) -> Result<Compiled, (&'static str, TemplateError)> {
        let mut env = environment(Escaping::None);
        env.set_auto_escape_callback(|name| {
            if name == HTML_PART {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, source) in parts {
            env.add_template_owned(*name, (*source).to_owned())
                .map_err(|err| (*name, engine_error(source, &err)))?;
        }
        Ok(Compiled { env })
    }

    /// Renders the part `name` for one recipient (`None` when there is no such part).
    pub fn render(
        &self,
        name: &str,
        contact: &ContactContext,
        unsubscribe_url: Option<&str>,
    ) -> Option<Result<String, TemplateError>> {
        let template = self.env.get_template(name).ok()?;
        let source = template.source();
        let rendered = template
            .render(Context {
                contact,
                unsubscribe_url,
            })
            .map_err(|err| engine_error(source, &err));
        Some(rendered.and_then(within_limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> ContactContext {
        ContactContext {
            name: Some("Ada <Lovelace>".to_owned()),
            first_name: Some("Ada".to_owned()),
            custom: [(
                "city".to_owned(),
                serde_json::Value::from("Douala & Yaoundé"),
            )]
            .into_iter()
            .collect(),
            ..ContactContext::default()
        }
    }

    #[test]
    fn variables_render_and_default_fills_absent_values() {
        let text = "Hi {{ contact.first_name }} {{ contact.last_name | default(\"client\") }} \
                    from {{ contact.custom.city }}{{ contact.custom.tier }}.";
        let custom = [
            ("city", serde_json::Value::from("x")),
            ("tier", serde_json::Value::from("x")),
        ];
        check(text, Escaping::None, &custom).unwrap();
        assert_eq!(
            render(text, Escaping::None, &ada(), None).unwrap(),
            "Hi Ada client from Douala & Yaoundé."
        );
        let stop = "{{ contact.name | upper }} {{ unsubscribe_url }}";
        assert_eq!(
            render(stop, Escaping::None, &ada(), Some("https://c.io/u/t")).unwrap(),
            "ADA <LOVELACE> https://c.io/u/t"
        );
    }

    #[test]
    fn html_parts_escape_what_variables_hold_and_text_parts_never_do() {
        let source = "<p>{{ contact.name }} — {{ contact.custom.city }}</p>";
        assert_eq!(
            render(source, Escaping::Html, &ada(), None).unwrap(),
            "<p>Ada &lt;Lovelace&gt; — Douala &amp; Yaoundé</p>"
        );
        assert_eq!(
            render(source, Escaping::None, &ada(), None).unwrap(),
            "<p>Ada <Lovelace> — Douala & Yaoundé</p>"
        );
    }

    #[test]
    fn unknown_variables_are_named_with_their_position() {
        let err = check("Hello\n  {{ contact.frist_name }}!", Escaping::None, &[]).unwrap_err();
        assert!(
            err.0
                .starts_with("unknown variable `contact.frist_name` at line 2, column 6"),
            "{}",
            err.0
        );
        let city = [("city", serde_json::Value::from("x"))];
        let err = check("{{ contact.custom.vip }}", Escaping::None, &city).unwrap_err();
        assert!(err.0.contains("`contact.custom.vip`"), "{}", err.0);
        let err = check("{{ password }}", Escaping::None, &[]).unwrap_err();
        assert!(err.0.contains("`password`"), "{}", err.0);
        // Assigned names are the template's own.
        check("{% set n = contact.name %}{{ n }}", Escaping::None, &[]).unwrap();
    }

    /// A custom field is tried with a value of its type: arithmetic on a number field passes
    /// (it failed when every field was tried as text), and on a text field it does not.
    #[test]
    fn custom_fields_are_tried_with_a_value_of_their_type() {
        let score = |sample: serde_json::Value| [("score", sample)];
        let source = "{{ contact.custom.score | default(0) + 1 }} points";
        check(source, Escaping::None, &score(serde_json::Value::from(1))).unwrap();
        let err = check(source, Escaping::None, &score(serde_json::Value::from("x"))).unwrap_err();
        assert!(err.0.contains("unsupported types"), "{}", err.0);
    }

    #[test]
    fn syntax_errors_unknown_filters_and_escapes_from_the_sandbox_are_refused() {
        let err = check("Hi {{ contact.name ", Escaping::None, &[]).unwrap_err();
        assert!(err.0.contains("line 1"), "{}", err.0);
        let err = check("{{ contact.name | shout }}", Escaping::None, &[]).unwrap_err();
        assert!(err.0.contains("shout"), "{}", err.0);
        for escape in [
            "{% include 'x' %}",
            "{% import 'x' as y %}",
            "{% extends 'x' %}",
            "{{ range(10) }}",
            "{{ namespace() }}",
        ] {
            assert!(check(escape, Escaping::None, &[]).is_err(), "{escape}");
        }
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel_or_room() {
        let loops = "{% for a in contact.name %}{% for b in contact.name %}{% for c in \
                     contact.name %}{% for d in contact.name %}x{% endfor %}{% endfor %}\
                     {% endfor %}{% endfor %}";
        let long = ContactContext {
            name: Some("y".repeat(100)),
            ..ContactContext::default()
        };
        assert!(render(loops, Escaping::None, &long, None).is_err());
        assert_eq!(
            position("ab\ncd\néf", 8),
            "line 3, column 2",
            "columns count characters"
        );
    }
}
