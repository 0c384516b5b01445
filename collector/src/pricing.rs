//! Cost per span from a price table: model -> US$ per million input, output and cached input
//! tokens. Defaults ship for common hosted models; `[pricing.models]` in plumb.toml overrides or
//! adds entries. A span that already carries a cost attribute keeps it.

use std::collections::BTreeMap;

use plumb_store::records::GenAiFields;
use serde::{Deserialize, Serialize};

/// US$ per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Price of input tokens read from the provider's prompt cache; `input` when absent.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

const fn p(input: f64, output: f64, cached_input: f64) -> Price {
    Price {
        input,
        output,
        cached_input: Some(cached_input),
    }
}

/// List prices of common models (US$ per million tokens, as published by the providers);
/// override them in config for negotiated prices or new models.
const DEFAULTS: &[(&str, Price)] = &[
    ("gpt-4o-mini", p(0.15, 0.60, 0.075)),
    ("gpt-4o", p(2.50, 10.00, 1.25)),
    ("gpt-4.1-nano", p(0.10, 0.40, 0.025)),
    ("gpt-4.1-mini", p(0.40, 1.60, 0.10)),
    ("gpt-4.1", p(2.00, 8.00, 0.50)),
    ("o3-mini", p(1.10, 4.40, 0.55)),
    ("o4-mini", p(1.10, 4.40, 0.275)),
    ("o3", p(2.00, 8.00, 0.50)),
    ("gpt-3.5-turbo", p(0.50, 1.50, 0.50)),
    ("claude-3-5-haiku", p(0.80, 4.00, 0.08)),
    ("claude-3-5-sonnet", p(3.00, 15.00, 0.30)),
    ("claude-3-7-sonnet", p(3.00, 15.00, 0.30)),
    ("claude-sonnet-4", p(3.00, 15.00, 0.30)),
    ("claude-opus-4", p(15.00, 75.00, 1.50)),
    ("gemini-2.0-flash", p(0.10, 0.40, 0.025)),
    ("gemini-1.5-pro", p(1.25, 5.00, 0.3125)),
];

#[derive(Debug, Clone)]
pub struct PriceTable {
    /// Longest names first, so "gpt-4o-mini" matches before "gpt-4o".
    entries: Vec<(String, Price)>,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable::with_overrides(&BTreeMap::new())
    }
}

impl PriceTable {
    pub fn with_overrides(overrides: &BTreeMap<String, Price>) -> Self {
        let mut map: BTreeMap<String, Price> =
            DEFAULTS.iter().map(|(m, p)| (m.to_string(), *p)).collect();
        map.extend(overrides.iter().map(|(k, v)| (k.to_ascii_lowercase(), *v)));
        let mut entries: Vec<(String, Price)> = map.into_iter().collect();
        entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        PriceTable { entries }
    }

    /// The price of a model: an exact name, else the longest listed name it starts with
    /// (dated snapshots such as `gpt-4o-2024-08-06`), also after a `provider/` prefix.
    pub fn price(&self, model: &str) -> Option<Price> {
        let model = model.to_ascii_lowercase();
        let bare = model.rsplit('/').next().unwrap_or(&model);
        self.entries
            .iter()
            .find(|(name, _)| bare == name || bare.starts_with(name.as_str()))
            .map(|(_, p)| *p)
    }

    /// Fills `cost_usd` from tokens when the span did not report a cost.
    pub fn apply(&self, g: &mut GenAiFields) {
        if g.cost_usd.is_some() {
            return;
        }
        let Some(model) = g.response_model.as_deref().or(g.request_model.as_deref()) else {
            return;
        };
        let Some(price) = self.price(model) else {
            return;
        };
        if g.usage_input_tokens.is_none() && g.usage_output_tokens.is_none() {
            return;
        }
        let input = g.usage_input_tokens.unwrap_or(0).max(0) as f64;
        let cached = (g.usage_cache_read_input_tokens.unwrap_or(0).max(0) as f64).min(input);
        let output = g.usage_output_tokens.unwrap_or(0).max(0) as f64;
        let cost = (input - cached) * price.input
            + cached * price.cached_input.unwrap_or(price.input)
            + output * price.output;
        g.cost_usd = Some(cost / 1e6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_and_provider_prefix_match() {
        let t = PriceTable::default();
        assert_eq!(t.price("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(t.price("openai/gpt-4o-2024-08-06").unwrap().input, 2.50);
        assert!(t.price("my-local-llama").is_none());
    }

    #[test]
    fn cost_counts_cached_tokens_at_their_price_and_overrides_apply() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "my-llama".to_string(),
            Price {
                input: 1.0,
                output: 2.0,
                cached_input: Some(0.5),
            },
        );
        let t = PriceTable::with_overrides(&overrides);
        let mut g = GenAiFields {
            request_model: Some("my-llama".into()),
            usage_input_tokens: Some(1_000_000),
            usage_cache_read_input_tokens: Some(400_000),
            usage_output_tokens: Some(500_000),
            ..Default::default()
        };
        t.apply(&mut g);
        // 600k * 1 + 400k * 0.5 + 500k * 2, per million
        assert!((g.cost_usd.unwrap() - 1.8).abs() < 1e-9);
        let mut reported = GenAiFields {
            cost_usd: Some(0.01),
            ..g.clone()
        };
        t.apply(&mut reported);
        assert_eq!(reported.cost_usd, Some(0.01));
    }
}
