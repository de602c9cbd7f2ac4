// pairs: the one piece of state the comparison relays (node-ws-relay.mjs,
// uws-relay.mjs) keep: a pair NAME's host connection and its viewers.
// A pair exists while it has a host or a viewer.

const pairs = new Map(); // name -> { host, viewers: Set }

// The pair NAME, created empty if it does not exist yet.
export function pair(name) {
  let p = pairs.get(name);
  if (!p) {
    p = { host: null, viewers: new Set() };
    pairs.set(name, p);
  }
  return p;
}

// The pair NAME or undefined; never creates one.
export function findPair(name) {
  return pairs.get(name);
}

// Forgets the pair NAME once it has neither host nor viewers.
export function forget(name, p) {
  if (!p.host && p.viewers.size === 0) pairs.delete(name);
}
