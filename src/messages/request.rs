//! The body of an HTTP request to an SMS gateway, from the operator's template
//! (`[sms] body`): `To={{ to }}&Body={{ text }}` or `{"to": {{ to }}, "text": {{ text }}}`.
//! Every value is escaped for the body's format as it is inserted — URL-encoded for a
//! form, a quoted JSON string for JSON — so a message text cannot break out of its field or
//! add one, whatever it holds. Undefined variables are errors, caught when the config is
//! read (`check`), not at the first send.

use anyhow::{anyhow, Result};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

/// How the body is written and its values escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// application/x-www-form-urlencoded (each value URL-encoded); with `method = "GET"`,
    /// the query string instead.
    Form,
    /// application/json (each value a JSON string, quotes included).
    Json,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        }
    }

    fn escape_name(self) -> &'static str {
        match self {
            BodyFormat::Form => "form",
            BodyFormat::Json => "json",
        }
    }
}

/// The values a body template may use.
#[derive(Debug, Clone, Serialize)]
pub struct BodyValues<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub text: &'a str,
    pub user_id: i64,
    pub delivery_id: i64,
    pub kind: &'a str,
}

/// A compiled body template.
pub struct BodyTemplate {
    env: Environment<'static>,
    format: BodyFormat,
}

impl BodyTemplate {
    pub fn new(format: BodyFormat, source: &str) -> Result<BodyTemplate> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let escape = format.escape_name();
        env.set_auto_escape_callback(move |_| AutoEscape::Custom(escape));
        env.set_formatter(formatter);
        env.add_template_owned("body", source.to_string())
            .map_err(|e| anyhow!("{}", e.detail().unwrap_or("syntax error")))?;
        Ok(BodyTemplate { env, format })
    }

    pub fn format(&self) -> BodyFormat {
        self.format
    }

    pub fn render(&self, values: &BodyValues) -> Result<String> {
        let template = self.env.get_template("body")?;
        let body = template.render(values).map_err(|e| {
            anyhow!(
                "{}{}",
                e.kind(),
                e.detail().map(|d| format!(": {d}")).unwrap_or_default()
            )
        })?;
        if self.format == BodyFormat::Json {
            serde_json::from_str::<serde_json::Value>(&body).map_err(|e| {
                anyhow!(
                    "the body is not valid JSON ({e}): {}",
                    crate::input::printable(&body, 120)
                )
            })?;
        }
        Ok(body)
    }
}

/// Compile `source` and render it with sample values: a setting that cannot work is
/// refused when the config is read.
pub fn check(format: BodyFormat, source: &str) -> Result<()> {
    let template = BodyTemplate::new(format, source)?;
    template.render(&BodyValues {
        to: "+33612345678",
        from: "notifyctl",
        text: "Rappel : \"Point\" & co, 09:30 https://meet.example/x?a=1&b=2",
        user_id: 1,
        delivery_id: 1,
        kind: "reminder",
    })?;
    Ok(())
}

fn formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> std::result::Result<(), minijinja::Error> {
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    let escaped = match state.auto_escape() {
        AutoEscape::Custom("form") => url::form_urlencoded::byte_serialize(text.as_bytes()).collect(),
        AutoEscape::Custom("json") => serde_json::Value::String(text).to_string(),
        _ => text,
    };
    out.write_str(&escaped).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write output").with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> BodyValues<'_> {
        BodyValues {
            to: "+15551234567",
            from: "+15550000000",
            text,
            user_id: 7,
            delivery_id: 42,
            kind: "reminder",
        }
    }

    #[test]
    fn the_built_in_body_passes_the_check_the_config_skips() {
        check(BodyFormat::Form, crate::config::DEFAULT_SMS_BODY).unwrap();
        assert!(check(BodyFormat::Json, crate::config::DEFAULT_SMS_BODY).is_err());
    }

    #[test]
    fn form_values_are_url_encoded() {
        let t = BodyTemplate::new(BodyFormat::Form, "To={{ to }}&From={{ from }}&Body={{ text }}").unwrap();
        let body = t.render(&values("a&b=c é")).unwrap();
        assert_eq!(
            body,
            "To=%2B15551234567&From=%2B15550000000&Body=a%26b%3Dc+%C3%A9"
        );
    }

    #[test]
    fn json_values_are_json_strings() {
        let t = BodyTemplate::new(
            BodyFormat::Json,
            r#"{"to": {{ to }}, "text": {{ text }}, "ref": {{ delivery_id }}}"#,
        )
        .unwrap();
        let body = t.render(&values("say \"hi\"\n}")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["text"], "say \"hi\"\n}");
        assert_eq!(v["ref"], "42");
    }

    #[test]
    fn broken_templates_are_refused() {
        assert!(check(BodyFormat::Form, "To={{ to ").is_err());
        assert!(check(BodyFormat::Form, "To={{ phone }}").is_err());
        assert!(check(BodyFormat::Json, "To={{ to }}").is_err());
        check(BodyFormat::Json, r#"{"to": {{ to }}}"#).unwrap();
    }
}
