// Print the MCP server config a host derives from an unpacked bundle, computed by the official
// @anthropic-ai/mcpb library (getMcpConfigForManifest: platform overrides, required-config check,
// ${__dirname}, ${HOME}-style and ${user_config.*} substitution), so tests start the bundle with
// exactly the command, arguments and environment a host would.
//
// Usage: node bundle/host-config.mjs UNPACKED_DIR USER_CONFIG_JSON
// Prints {"command": ..., "args": [...], "env": {...}}; exits 1 when required config is missing.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb/node";

const [extensionPath, userConfigJson] = process.argv.slice(2);
if (!extensionPath || !userConfigJson) {
  console.error("usage: node host-config.mjs UNPACKED_DIR USER_CONFIG_JSON");
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(join(extensionPath, "manifest.json"), "utf8"));
const home = homedir();
const config = await getMcpConfigForManifest({
  manifest,
  extensionPath,
  systemDirs: {
    HOME: home,
    DESKTOP: join(home, "Desktop"),
    DOCUMENTS: join(home, "Documents"),
    DOWNLOADS: join(home, "Downloads"),
  },
  userConfig: JSON.parse(userConfigJson),
  pathSeparator: delimiter === ";" ? "\\" : "/",
});
if (config === undefined) {
  console.error("the host would not start this bundle: required user_config is missing");
  process.exit(1);
}
process.stdout.write(JSON.stringify(config));
