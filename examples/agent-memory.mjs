// An agent's working memory on dgent's embedded default: SQLite under $XDG_DATA_HOME/dgent.
// Stores a short episode as datums linked by causal parents, reads it back, prints the causal
// chain, then starts a fresh process (a real restart) that finds the same memories again.
//
//   npm run example            (or: node examples/agent-memory.mjs after `npm run build`)
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { contentText, makeDatum, openDefaultStore } from "dgent";

const NAMESPACE = process.env.DGENT_EXAMPLE_NAMESPACE ?? "agent-memory-example";

async function remember() {
  const store = await openDefaultStore({ namespace: NAMESPACE });
  const backend = await store.backend();
  console.log(`memory lives on ${backend.landing} (${backend.tiers[0].durability}), namespace "${NAMESPACE}"`);

  // One episode: each step is caused by the previous one.
  const episode = `episode-${Date.now()}/`;
  const steps = [
    ["user", "What's the weather in Lisbon tomorrow?"],
    ["thought", "I need a forecast; call the weather tool."],
    ["tool", '{"city":"Lisbon","high_c":21,"sky":"sunny"}'],
    ["answer", "Sunny in Lisbon tomorrow, with a high of 21 °C."],
  ];
  let parent = null;
  for (const [role, text] of steps) {
    const datum = makeDatum({ content: text, causalParent: parent, metadata: { role }, idPrefix: episode });
    parent = await store.put(datum);
  }

  // Read back: the newest memories of this episode, then how the answer came about.
  const recent = await store.list({ prefix: episode, limit: 10 });
  console.log(`stored ${recent.length} datums; newest is a ${recent[0].metadata.role}: "${contentText(recent[0])}"`);
  console.log("causal chain of the answer:");
  for (const [i, d] of (await store.causalChain(parent)).entries()) {
    console.log(`  ${i + 1}. [${d.metadata.role}] ${contentText(d)}`);
  }
  await store.close();
  return parent;
}

async function recall(answerId) {
  const store = await openDefaultStore({ namespace: NAMESPACE });
  const chain = await store.causalChain(answerId);
  await store.close();
  if (chain.length !== 4) throw new Error(`after restart: expected 4 memories, found ${chain.length}`);
  console.log(`after restart (pid ${process.pid}): found all ${chain.length} memories; the question was "${contentText(chain[0])}"`);
}

if (process.argv[2] === "--recall") {
  await recall(process.argv[3]);
} else {
  const answerId = await remember();
  // A new process opens the same SQLite file: nothing is kept in memory between the two.
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--recall", answerId], { stdio: "inherit" });
  process.exitCode = child.status ?? 1;
}
