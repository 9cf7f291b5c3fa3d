// The Warden extension: the language (grammar, brackets, comments) is declared in package.json;
// this starts `warden lsp` for diagnostics, hover, definitions, completion and formatting.
const { workspace, window } = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = workspace.getConfiguration("warden");
  const command = config.get("path") || "warden";
  const policies = config.get("policies");
  const folder = workspace.workspaceFolders && workspace.workspaceFolders[0];
  const serverOptions = {
    command,
    args: ["lsp"],
    options: folder ? { cwd: folder.uri.fsPath } : undefined,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "warden" },
      // Data files: the server checks only those inside a policy directory.
      { scheme: "file", language: "json" },
    ],
    initializationOptions: policies ? { policies } : {},
    synchronize: {
      fileEvents: workspace.createFileSystemWatcher("**/*.{warden,json}"),
    },
  };
  client = new LanguageClient("warden", "Warden", serverOptions, clientOptions);
  client.start().catch((error) => {
    window.showErrorMessage(
      `Warden: cannot start \`${command} lsp\` (${error.message}). Set "warden.path" to the warden binary.`
    );
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
