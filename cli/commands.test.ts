import { describe, expect, it } from "vitest";
import { allCommands, COMMAND_INDEX } from "./commands.js";
import { BACKUP_COMMANDS } from "./backup-commands.js";
import { CONFIG_COMMANDS } from "./config-commands.js";
import { CRYPT_COMMANDS } from "./crypt-commands.js";
import { LATTICE_COMMANDS } from "./lattice-commands.js";
import { PATH_COMMANDS } from "./path-commands.js";
import { QUERY_COMMANDS } from "./query-commands.js";
import { REF_COMMANDS } from "./ref-commands.js";
import { RETENTION_COMMANDS } from "./retention-commands.js";
import { SEARCH_COMMANDS } from "./search-commands.js";
import { SERVE_COMMANDS } from "./serve-commands.js";

describe("the command index (a command line loads only its command's module)", () => {
  it("names every command of every module, under that module, and nothing else", async () => {
    const tables = {
      query: QUERY_COMMANDS,
      lattice: LATTICE_COMMANDS,
      retention: RETENTION_COMMANDS,
      ref: REF_COMMANDS,
      search: SEARCH_COMMANDS,
      path: PATH_COMMANDS,
      config: CONFIG_COMMANDS,
      serve: SERVE_COMMANDS,
      backup: BACKUP_COMMANDS,
      crypt: CRYPT_COMMANDS,
    };
    const fromModules = Object.entries(tables).flatMap(([where, table]) => Object.keys(table).map((name) => [name, where]));
    const indexed = Object.entries(COMMAND_INDEX).filter(([, where]) => where !== "own");
    expect(Object.fromEntries(indexed)).toEqual(Object.fromEntries(fromModules));
    expect(Object.entries(COMMAND_INDEX).filter(([, where]) => where === "own").map(([name]) => name)).toEqual(["put", "backend"]);
    // The loaded table is the modules' own objects, in the index's (help) order.
    const all = await allCommands();
    expect(Object.keys(all)).toEqual(Object.keys(COMMAND_INDEX));
    for (const [name, where] of fromModules) expect(all[name as string]).toBe(tables[where as keyof typeof tables][name as string]);
  });
});
