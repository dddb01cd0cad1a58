// What the conformance kit runs in a child process: the same adapter over the same directory.
import { dirAdapter } from "./index.mjs";

export default (args) => dirAdapter(args);
