#!/usr/bin/env python3
"""Scaffolds a job kind: `scripts/new-kind.py area.verb [queue]` (or `just new-kind`).

Writes the three places a kind lives and nothing else:
  - crates/kinds/src/<area>_<verb>.rs: the kind (parameters, validation, description,
    a minimal run and a unit test), to edit into the real thing;
  - proto/forklift/v1/kinds.proto: its `<Area><Verb>Params` message and its `JobParams`
    oneof entry (the next free number below 100; debug kinds take 100 and up);
  - crates/kinds/src/lib.rs: `pub mod` and the one registry line.
Everything else (Jobs.ListKinds, the web app's form, the JSON API, the OpenAPI schema,
the proto<->JSON conversion) follows from the kind's description.

Refuses a malformed name, or one that any of the three places already has, before
writing anything. The queue defaults to the queue of another kind of the same area, or
else the area itself (a new queue needs workers: see deploy/k8s/base/workers.yaml).
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ROOT / "crates/kinds/src"
LIB = KINDS / "lib.rs"
PROTO = ROOT / "proto/forklift/v1/kinds.proto"

NAME = re.compile(r"^([a-z][a-z0-9]*)\.([a-z][a-z0-9]*(?:_[a-z0-9]+)*)$")
QUEUE = re.compile(r"^[a-z][a-z0-9_-]*$")


def fail(msg: str) -> None:
    print(f"new-kind: {msg}", file=sys.stderr)
    sys.exit(1)


def pascal(snake: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in snake.split("_"))


def area_queue(area: str) -> str | None:
    """The queue of an existing kind of `area`, from the module that names it."""
    for path in sorted(KINDS.glob("*.rs")):
        text = path.read_text()
        if not re.search(rf'"{re.escape(area)}\.[a-z0-9_]+"', text):
            continue
        m = re.search(r'fn queue\(&self\) -> &\'static str \{\s*"([^"]+)"', text)
        if m:
            return m.group(1)
    return None


def kind_module(name: str, area: str, verb: str, field: str, queue: str) -> str:
    struct = pascal(verb)
    title = verb.replace("_", " ").capitalize()
    return f'''//! `{name}`: one input file to `result.txt`. Scaffolded by `just new-kind`: describe
//! what a job does here, from which inputs to which outputs.

use crate::describe::{{self, Param}};
use async_trait::async_trait;
use forklift_runner::{{JobCtx, JobError, Kind, Violation}};
use forklift_rpc::v1 as pb;
use serde::{{Deserialize, Serialize}};
use serde_json::{{Value, json}};

/// The largest `limit`.
pub const MAX_LIMIT: u32 = 100;
/// The `limit` a 0 (or no value) stands for.
pub const DEFAULT_LIMIT: u32 = 10;
/// The largest input, in bytes.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Parameters of `{name}`: one field per described parameter and per field of
/// `{pascal(field)}Params` in kinds.proto, of the same name. Integers as wide as the
/// proto's, so that validation, not the deserialiser, refuses what is out of range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {{
    /// 1 to [`MAX_LIMIT`]; 0 means [`DEFAULT_LIMIT`].
    #[serde(default)]
    pub limit: u32,
}}

impl Params {{
    /// Checks ranges and fills in defaults.
    pub fn validate(mut self) -> Result<Self, Vec<Violation>> {{
        if self.limit > MAX_LIMIT {{
            return Err(vec![Violation::new(
                "limit",
                format!("1 to {{MAX_LIMIT}} (0 for the default of {{DEFAULT_LIMIT}})"),
            )]);
        }}
        if self.limit == 0 {{
            self.limit = DEFAULT_LIMIT;
        }}
        Ok(self)
    }}
}}

/// The `{name}` kind.
pub struct {struct};

#[async_trait]
impl Kind for {struct} {{
    fn name(&self) -> &'static str {{
        "{name}"
    }}
    fn queue(&self) -> &'static str {{
        "{queue}"
    }}
    fn proto_field(&self) -> &'static str {{
        "{field}"
    }}

    fn describe(&self) -> pb::KindInfo {{
        pb::KindInfo {{
            // Which files suggest this kind: media types, "type/" prefixes, ".ext".
            accepts: vec![],
            fields: describe::fields(vec![
                Param::integer("limit", "Limit")
                    .range(1, MAX_LIMIT.into())
                    .default(json!(DEFAULT_LIMIT))
                    .help("An example parameter."),
            ]),
            ..describe::kind("{title}", "One file to result.txt.", "{title}")
        }}
    }}

    fn validate(&self, v: Value, inputs: usize) -> Result<Value, Vec<Violation>> {{
        crate::validate_one_input(v, inputs, "{name} takes exactly one input file", Params::validate)
    }}

    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {{
        let params: Params = ctx.params()?;
        let bytes = ctx.input_bytes(0, MAX_INPUT_BYTES).await?;
        let body = format!("{{}} bytes, limit {{}}\\n", bytes.len(), params.limit);
        ctx.put_output("result.txt", "text/plain", body.into())
            .await?;
        ctx.progress(100, "done").await;
        Ok(())
    }}
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn validation_names_fields_and_fills_defaults() {{
        assert_eq!(
            {struct}.validate(json!({{}}), 1).unwrap(),
            json!({{"limit": DEFAULT_LIMIT}})
        );
        let refused = {struct}.validate(json!({{"limit": 1000}}), 2).unwrap_err();
        let fields: Vec<_> = refused.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["limit", "input_file_ids"]);
    }}
}}
'''


def main() -> None:
    args = sys.argv[1:]
    if not 1 <= len(args) <= 2:
        fail("usage: new-kind.py area.verb [queue]   e.g. new-kind.py image.convert media")
    name = args[0]
    m = NAME.fullmatch(name)
    if not m:
        fail(
            f"{name!r} is not a kind name: area.verb in lower case, e.g. image.convert "
            "(letters and digits; words of the verb joined by _)"
        )
    area, verb = m.groups()
    if area == "debug":
        fail(
            "debug kinds are written by hand in crates/kinds/src/debug.rs: they must be "
            "unavailable unless the server enables debug kinds, which the scaffold does not do"
        )
    field = f"{area}_{verb}"
    message = f"{pascal(field)}Params"
    module = f"{area}_{verb}"
    queue = args[1] if len(args) == 2 and args[1] else (area_queue(area) or area)
    if not QUEUE.fullmatch(queue):
        fail(f"{queue!r} is not a queue name")

    module_path = KINDS / f"{module}.rs"
    lib = LIB.read_text()
    proto = PROTO.read_text()
    if module_path.exists():
        fail(f"{module_path.relative_to(ROOT)} exists")
    for path in sorted(KINDS.glob("*.rs")):
        named = rf'fn name\(&self\) -> &\'static str \{{\s*"{re.escape(name)}"'
        if re.search(named, path.read_text()):
            fail(f"{name} exists ({path.relative_to(ROOT)})")
    if re.search(rf"\bmessage {message}\b", proto):
        fail(f"kinds.proto already has a message {message}")
    if re.search(rf"\b{field} = \d+;", proto):
        fail(f"kinds.proto's JobParams already has a field {field}")
    if re.search(rf"^pub mod {module};", lib, re.M):
        fail(f"lib.rs already has a module {module}")

    # JobParams: the oneof's entries and the next free number in the kind's range.
    oneof = re.search(r"message JobParams \{\n  oneof kind \{\n(.*?)\n  \}\n\}", proto, re.S)
    if not oneof:
        fail("kinds.proto: no `message JobParams { oneof kind { ... } }` found")
    numbers = [int(n) for n in re.findall(r"= (\d+);", oneof.group(1))]
    debug = area == "debug"
    taken = [n for n in numbers if (n >= 100) == debug]
    number = max(taken, default=99 if debug else 0) + 1
    if not debug and number >= 100:
        fail("JobParams has no free field number below 100")
    entry = (
        f'    // "{name}": one input file to result.txt (describe it here).\n'
        f"    {message} {field} = {number};\n"
    )
    body = oneof.group(1) + "\n"
    # After the last entry of the kind's range, with its comment lines kept together.
    lines = body.splitlines(keepends=True)
    at = len(lines)
    if not debug:
        for i, line in enumerate(lines):
            n = re.search(r"= (\d+);", line)
            if n and int(n.group(1)) >= 100:
                at = i
                while at > 0 and lines[at - 1].lstrip().startswith("//"):
                    at -= 1
                break
    lines.insert(at, entry)
    proto = proto[: oneof.start(1)] + "".join(lines).rstrip("\n") + proto[oneof.end(1) :]
    msg = (
        f'// Parameters of "{name}". Input: exactly one file. Outputs: "result.txt".\n'
        f"message {message} {{\n"
        f"  // 1 to 100; 0 means 10.\n"
        f"  uint32 limit = 1;\n"
        f"}}\n\n"
    )
    anchor = "message DebugNoopParams"
    if debug or anchor not in proto:
        anchor = "// What a job kind is"
    if anchor not in proto:
        fail(f"kinds.proto: no place found for the message (looked for {anchor!r})")
    proto = proto.replace(anchor, msg + anchor, 1)

    # lib.rs: the module among the others, the registry line before the debug kinds.
    mods = re.findall(r"^pub mod (\w+);\n", lib, re.M)
    after = [m for m in mods if m < module]
    if after:
        line = f"pub mod {after[-1]};\n"
    else:
        line = f"pub mod {mods[0]};\n" if mods else None
    if line is None:
        fail("lib.rs: no `pub mod` lines found")
    i = lib.index(line) + (len(line) if after else 0)
    lib = lib[:i] + f"pub mod {module};\n" + lib[i:]
    register = re.search(r"^([ \t]*)\.register\(debug::", lib, re.M)
    if debug or not register:
        last = list(re.finditer(r"^([ \t]*)\.register\(.*\);$", lib, re.M))
        if not last:
            fail("lib.rs: no `.register(...);` ending the chain in registry()")
        end = last[-1]
        new = f"\n{end.group(1)}.register({module}::{pascal(verb)});"
        lib = lib[: end.end() - 1] + new + lib[end.end() :]
    else:
        new = f"{register.group(1)}.register({module}::{pascal(verb)})\n"
        lib = lib[: register.start()] + new + lib[register.start() :]

    module_path.write_text(kind_module(name, area, verb, field, queue))
    PROTO.write_text(proto)
    LIB.write_text(lib)
    # Best effort: the template is laid out as rustfmt would, whatever the name's length.
    try:
        subprocess.run(["rustfmt", "--edition", "2024", str(module_path)], check=False)
    except OSError:
        pass
    print(
        f"""new-kind: {name} scaffolded on queue {queue!r}:
  {module_path.relative_to(ROOT)}   the kind: parameters, validation, description, run, a test
  {PROTO.relative_to(ROOT)}   message {message}; JobParams.{field} = {number}
  {LIB.relative_to(ROOT)}   pub mod {module}; .register({module}::{pascal(verb)})
Next: make Params, {message} and describe() say the same parameters (a test in
crates/kinds/src/describe.rs checks they agree), write run, add {name} to the kinds
listed in crates/kinds/src/describe.rs and apps/web/tests/it/describe.rs, then `cargo
test -p forklift-kinds` and `just proto-check`. See ARCHITECTURE.md, "Add a kind"."""
    )


if __name__ == "__main__":
    main()
