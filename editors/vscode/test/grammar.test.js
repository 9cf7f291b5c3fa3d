// Tokenises the bundled policies with the extension's TextMate grammar, through the same
// engine VS Code uses (vscode-textmate on vscode-oniguruma), and checks the scopes given to
// keywords, names, strings, numbers, comments and annotations.
"use strict";

const assert = require("assert");
const fs = require("fs");
const path = require("path");
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const repo = path.resolve(__dirname, "../../..");
const grammarPath = path.resolve(__dirname, "../syntaxes/warden.tmLanguage.json");

async function loadGrammar() {
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === "source.warden"
        ? textmate.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath)
        : null,
  });
  return registry.loadGrammar("source.warden");
}

function wardenFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return wardenFiles(full);
    return entry.name.endsWith(".warden") ? [full] : [];
  });
}

// Every token of a file: its line, text and scopes.
function tokenise(grammar, text) {
  let stack = textmate.INITIAL;
  const tokens = [];
  text.split("\n").forEach((line, number) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      tokens.push({
        line: number + 1,
        lineText: line,
        text: line.slice(token.startIndex, token.endIndex),
        scopes: token.scopes,
      });
    }
    stack = result.ruleStack;
  });
  return tokens;
}

let checks = 0;

// The `nth` token `text` on the first line containing `context` has `scope` among its scopes.
function expectScope(file, tokens, context, text, scope, nth = 0) {
  const line = tokens.find((t) => t.lineText.includes(context));
  assert.ok(line, `${file}: no line contains ${JSON.stringify(context)}`);
  const token = tokens.filter((t) => t.line === line.line && t.text.trim() === text)[nth];
  assert.ok(token, `${file}:${line.line}: no token ${JSON.stringify(text)} in ${JSON.stringify(line.lineText)}`);
  assert.ok(
    token.scopes.includes(scope),
    `${file}:${line.line}: ${JSON.stringify(text)} has scopes ${token.scopes.join(" ")}, not ${scope}`
  );
  checks += 1;
}

async function main() {
  const grammar = await loadGrammar();
  const files = [...wardenFiles(path.join(repo, "policies")), ...wardenFiles(path.join(repo, "examples"))];
  assert.ok(files.length >= 4, `found only ${files.length} policy files`);
  const byName = {};
  for (const file of files) {
    const tokens = tokenise(grammar, fs.readFileSync(file, "utf8"));
    byName[path.relative(repo, file)] = tokens;
    // Whole-file invariants: comment lines are comments, string literals are strings,
    // keywords are never plain text, and nothing is marked invalid.
    for (const token of tokens) {
      const where = `${path.relative(repo, file)}:${token.line}`;
      const top = token.scopes[token.scopes.length - 1];
      assert.ok(!top.startsWith("invalid"), `${where}: ${JSON.stringify(token.text)} is ${top}`);
      if (token.lineText.trim().startsWith("//") && token.text.trim() !== "") {
        assert.ok(top.startsWith("comment."), `${where}: comment text ${JSON.stringify(token.text)} is ${top}`);
      }
      if (/^"[^"]*"$/.test(token.text)) {
        assert.fail(`${where}: a whole string ${token.text} was one token outside string scope`);
      }
      if (/^(allow|deny|if|unless|and|or|not|has|in|let|entity|role)$/.test(token.text)) {
        assert.notStrictEqual(top, "source.warden", `${where}: keyword ${token.text} unscoped`);
      }
      checks += 1;
    }
  }

  const schema = byName["policies/schema.warden"];
  expectScope("schema", schema, "// Groups nest", "// Groups nest: `photographers` is a member of `staff`.", "comment.line.double-slash.warden");
  expectScope("schema", schema, "entity User in Group", "entity", "storage.type.entity.warden");
  expectScope("schema", schema, "entity User in Group", "User", "entity.name.type.entity.warden");
  expectScope("schema", schema, "entity User in Group", "in", "keyword.operator.word.warden");
  expectScope("schema", schema, "entity User in Group", "Group", "entity.name.type.warden");
  expectScope("schema", schema, "email: String", "String", "support.type.builtin.warden");
  expectScope("schema", schema, "roles: Set<String>", "Set", "support.type.builtin.warden");
  expectScope("schema", schema, "action view, comment on Photo", "action", "storage.type.action.warden");
  expectScope("schema", schema, "action view, comment on Photo", "view", "entity.name.function.action.warden");
  expectScope("schema", schema, "action view, comment on Photo", "comment", "entity.name.function.action.warden");
  expectScope("schema", schema, "action view, comment on Photo", "on", "keyword.other.warden");
  expectScope("schema", schema, "action view, comment on Photo", "Photo", "entity.name.type.warden");
  expectScope("schema", schema, "action archive on Album context", "context", "variable.language.warden");
  expectScope("schema", schema, "action group write", "write", "entity.name.function.action-group.warden");

  const rules = byName["policies/rules.warden"];
  expectScope("rules", rules, '@id("public-photos")', "id", "storage.type.annotation.warden");
  expectScope("rules", rules, '@id("public-photos")', "@", "punctuation.definition.annotation.warden");
  expectScope("rules", rules, '@id("public-photos")', "public-photos", "string.quoted.double.warden");
  expectScope("rules", rules, "allow view on Photo if resource.album.public", "allow", "keyword.control.effect.warden");
  expectScope("rules", rules, "allow view on Photo if resource.album.public", "if", "keyword.control.conditional.warden");
  expectScope("rules", rules, "allow view on Photo if resource.album.public", "resource", "variable.language.warden");
  expectScope("rules", rules, "allow view on Photo if resource.album.public", "album", "variable.other.property.warden");
  expectScope("rules", rules, "deny * if subject has suspended", "deny", "keyword.control.effect.warden");
  expectScope("rules", rules, "deny * if subject has suspended", "*", "keyword.operator.wildcard.warden");
  expectScope("rules", rules, "deny * if subject has suspended", "has", "keyword.operator.word.warden");
  expectScope("rules", rules, "deny delete unless", "unless", "keyword.control.conditional.warden");
  expectScope("rules", rules, "deny delete unless", "properties", "variable.language.properties.warden");
  expectScope("rules", rules, "let staff = subject in", "let", "storage.type.let.warden");
  expectScope("rules", rules, "let staff = subject in", "staff", "entity.name.variable.let.warden");
  expectScope("rules", rules, 'let staff = subject in Group::"staff"', "Group", "entity.name.type.warden");
  expectScope("rules", rules, 'let staff = subject in Group::"staff"', "::", "punctuation.separator.namespace.warden");
  expectScope("rules", rules, "context.ip in ip(", "ip", "variable.other.property.warden");
  expectScope("rules", rules, "context.ip in ip(", "ip", "support.function.warden", 1);
  expectScope("rules", rules, "context.ip in ip(", "10.0.0.0/8", "string.quoted.double.warden");

  const roles = byName["policies/roles.warden"];
  expectScope("roles", roles, "role contributor : viewer", "role", "storage.type.role.warden");
  expectScope("roles", roles, "role contributor : viewer", "contributor", "entity.name.type.role.warden");
  expectScope("roles", roles, "weekday(now(), ", "weekday", "support.function.warden");
  expectScope("roles", roles, "weekday(now(), ", "5", "constant.numeric.integer.warden");
  expectScope("roles", roles, "and hour(now(), \"Europe/Paris\") >= 9", ">=", "keyword.operator.comparison.warden");
  expectScope("roles", roles, "and hour(now(), \"Europe/Paris\") >= 9", "and", "keyword.operator.word.warden");

  const greenhouse = byName["examples/greenhouse/policy.warden"];
  expectScope("greenhouse", greenhouse, "lifetime 14d", "14d", "constant.numeric.duration.warden");
  expectScope("greenhouse", greenhouse, "lifetime 14d", "lifetime", "keyword.other.capability.warden");

  const tests = Object.entries(byName).find(([name]) => name.startsWith("policies/tests/"))[1];
  expectScope("tests", tests, "test \"", "test", "storage.type.test.warden");

  // What the bundled files do not show: block comments, escapes, booleans, durations.
  const extra = tokenise(grammar, [
    "/* a block",
    "   comment */ let _on = true and resource.name like \"*.jpg\\*\" and 1h30m > 90m",
    'allow view if "\\q" == "x"',
  ].join("\n"));
  expectScope("extra", extra, "/* a block", "/*", "punctuation.definition.comment.begin.warden");
  expectScope("extra", extra, "/* a block", "a block", "comment.block.warden");
  expectScope("extra", extra, "comment */", "comment", "comment.block.warden");
  expectScope("extra", extra, "comment */", "true", "constant.language.boolean.warden");
  expectScope("extra", extra, "comment */", "like", "keyword.operator.word.warden");
  expectScope("extra", extra, "comment */", "\\*", "constant.character.escape.warden");
  expectScope("extra", extra, "comment */", "1h30m", "constant.numeric.duration.warden");
  expectScope("extra", extra, "comment */", "90m", "constant.numeric.duration.warden");
  expectScope("extra", extra, 'allow view if "\\q"', "\\q", "invalid.illegal.escape.warden");

  console.log(`grammar: ${files.length} policy files tokenised, ${checks} scope checks passed`);
}

main().catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
