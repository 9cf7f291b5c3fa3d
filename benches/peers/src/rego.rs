//! Rego (`regorus`): the policy and the data document are loaded once; per request the AuthZEN
//! JSON becomes the input (plus the fixed clock as `input.now_ns`) and the `allow` rule is
//! evaluated.

use std::num::NonZeroUsize;

use regorus::{Engine, PolicyLengthConfig, Value};

use crate::common::{Decider, Req};

pub struct RegoDecider {
    engine: Engine,
    rule: String,
}

impl RegoDecider {
    /// `policies`: (file name, text); `data`: the data document as JSON text.
    pub fn new(policies: &[(&str, &str)], data: &str, rule: &str) -> RegoDecider {
        let mut engine = Engine::new();
        engine.set_rego_v0(false);
        // regorus caps a policy file at 20,000 lines and 1 MiB by default (limits for
        // untrusted input); the 10,000-rule model needs more.
        let mut limits = PolicyLengthConfig::default();
        limits.max_lines = NonZeroUsize::new(1_000_000).expect("non-zero");
        limits.max_file_bytes = NonZeroUsize::new(256 << 20).expect("non-zero");
        engine.set_policy_length_config(limits);
        for (name, text) in policies {
            engine
                .add_policy(name.to_string(), text.to_string())
                .unwrap_or_else(|e| panic!("the Rego policy {name} parses: {e}"));
        }
        engine
            .add_data(Value::from_json_str(data).expect("the Rego data is JSON"))
            .expect("the Rego data loads");
        let mut decider = RegoDecider {
            engine,
            rule: rule.to_string(),
        };
        // Rego compiles lazily: one evaluation finishes loading, so the load time is complete.
        decider.engine.set_input(Value::new_object());
        let _ = decider.engine.eval_rule(decider.rule.clone());
        decider
    }

    fn try_decide(&mut self, req: &Req) -> Option<bool> {
        let text = std::str::from_utf8(&req.body).ok()?;
        let mut input = Value::from_json_str(text).ok()?;
        input.as_object_mut().ok()?.insert(
            Value::from("now_ns"),
            Value::from(req.now.as_nanosecond() as i64),
        );
        self.engine.set_input(input);
        let result = self.engine.eval_rule(self.rule.clone()).ok()?;
        Some(result == Value::from(true))
    }
}

impl Decider for RegoDecider {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}
