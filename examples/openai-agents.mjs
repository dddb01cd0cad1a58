// The OpenAI Agents SDK on dgent: a Session in a SQLite file. No model is called: the SDK's
// ScriptedModel (from @openai/agents-core/testing) stands in for one, and the Runner uses the
// session exactly as it would with a real model.
//
//   node examples/openai-agents.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, Runner } from "@openai/agents-core";
import { assistantMessage, ScriptedModel } from "@openai/agents-core/testing";
import { DgentSession } from "dgent/integrations/openai-agents";

const dir = mkdtempSync(join(tmpdir(), "dgent-agents-example-"));
const url = `sqlite://${join(dir, "sessions.db")}`;

// 1. Two turns of one conversation: the second model call sees the first turn, read from the session.
const model = new ScriptedModel([[assistantMessage("Nice to meet you, Ada.")], [assistantMessage("Your name is Ada.")]]);
const agent = new Agent({ name: "Assistant", instructions: "Reply very concisely.", model });
const runner = new Runner({ tracingDisabled: true });
const session = await DgentSession.fromUrl(url, { sessionId: "user-42" });

console.log(`> ${(await runner.run(agent, "Hi, I'm Ada.", { session })).finalOutput}`);
console.log(`> ${(await runner.run(agent, "What's my name?", { session })).finalOutput}`);
assert.match(JSON.stringify(model.calls[1].request.input), /Nice to meet you, Ada\./);
const items = await session.getItems();
console.log(`the session holds ${items.length} items; the last 2: ${JSON.stringify((await session.getItems(2)).map((i) => i.role))}`);
assert.equal(items.length, 4);

// 2. Correcting a turn: pop the answer and the question, then ask again.
const answer = await session.popItem();
const question = await session.popItem();
assert.equal(question.content, "What's my name?");
console.log(`popped: ${question.role} "${question.content}", then the ${answer.role}'s reply`);
await session.addItems([{ role: "user", content: "Do you remember me?" }]);

// 3. Two processes' worth of pops at once (two connections): no item comes back twice.
await session.addItems(Array.from({ length: 6 }, (_, i) => ({ role: "user", content: `note ${i}` })));
const other = await DgentSession.fromUrl(url, { sessionId: "user-42" });
const popped = await Promise.all([session.popItem(), other.popItem(), session.popItem(), other.popItem()]);
const contents = popped.map((i) => i.content);
assert.equal(new Set(contents).size, 4);
console.log(`4 concurrent pops from 2 connections: ${contents.sort().join(", ")}`);
await other.close();
await session.close();

// 4. A restart: the session is in the file.
const reopened = new DgentSession({ sessionId: "user-42", url });
const kept = (await reopened.getItems()).map((i) => (typeof i.content === "string" ? i.content : i.content[0].text));
console.log(`after restart: ${kept.join(" | ")}`);
assert.deepEqual(kept, ["Hi, I'm Ada.", "Nice to meet you, Ada.", "Do you remember me?", "note 0", "note 1"]);
await reopened.clearSession();
assert.deepEqual(await reopened.getItems(), []);
console.log("cleared: 0 items");
await reopened.close();

rmSync(dir, { recursive: true, force: true });
console.log("done");
