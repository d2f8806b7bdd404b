//! Text helpers of the Elemente simulator: `{{variable}}` template rendering for created calls
//! (names may contain spaces, values come from `customFields`) and PII masking for `sanitised=yes`.

use serde_json::{json, Map, Value};

/// Replace `{{name}}` (names may contain spaces) from the customer override and its custom fields;
/// unknown names are left as written.
pub(crate) fn render_template(
    template: &str,
    cust: &Map<String, Value>,
    agent: Option<&Map<String, Value>>,
) -> String {
    let lookup = |name: &str| -> Option<String> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        if let Some(fields) = cust.get("customFields").and_then(Value::as_array) {
            for f in fields {
                if f.get("name").and_then(Value::as_str) == Some(name) {
                    return f.get("value").and_then(scalar);
                }
            }
        }
        if name == "aiName" {
            return agent.and_then(|a| a.get("name")).and_then(scalar);
        }
        cust.get(name).and_then(scalar)
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The record with phone and email fields masked (`sanitised=yes`).
pub(crate) fn sanitised(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(obj) = v.as_object_mut() {
        for key in ["agentPhone", "agentEmail", "customerPhone", "customerEmail"] {
            if let Some(Value::String(s)) = obj.get(key) {
                let masked = mask(s);
                obj.insert(key.into(), json!(masked));
            }
        }
    }
    v
}

fn mask(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    if let Some((local, domain)) = s.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = s.chars().collect();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 4 || i + 2 >= chars.len() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_custom_fields_with_spaces() {
        let cust = json!({"firstName": "John", "customFields": [
            {"name": "Order ID", "value": "12345"}, {"name": "Order Amount", "value": 150.75}]});
        let cust = cust.as_object().unwrap();
        let out = render_template(
            "Hi {{firstName}}, order {{Order ID}} costs {{ Order Amount }} {{unknown}} {{open",
            cust,
            None,
        );
        assert_eq!(out, "Hi John, order 12345 costs 150.75 {{unknown}} {{open");
    }

    #[test]
    fn masking_keeps_shape() {
        assert_eq!(mask("+15551234567"), "+155******67");
        assert_eq!(mask("ada.eze@example.com"), "a***@example.com");
        assert_eq!(mask("+1"), "+1");
    }
}
