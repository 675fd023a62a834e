// Copies of a site served over HTTP by a node:http server on 127.0.0.1, each optionally
// changed first (tampering tests): shared by the loader tests.
import { before, after } from "node:test";
import { createServer } from "node:http";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Serve copies of the site folder `source` for the test file that calls this; site(name, edit) -> its URL. */
export function servedSites(source) {
  let root, server, base;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "reviewkit-site-"));
    server = createServer((req, res) => {
      try {
        const body = readFileSync(join(root, decodeURIComponent(new URL(req.url, "http://x").pathname)));
        res.writeHead(200).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${server.address().port}/`;
  });
  after(() => { server.close(); rmSync(root, { recursive: true, force: true }); });
  /** A fresh copy of the site under root/name/, optionally changed by edit(dir). */
  return (name, edit) => {
    const dir = join(root, name);
    cpSync(source, dir, { recursive: true });
    if (edit) edit(dir);
    return `${base}${name}/`;
  };
}

export function editManifest(dir, change) {
  const path = join(dir, "manifest.json");
  const m = JSON.parse(readFileSync(path, "utf8"));
  change(m);
  writeFileSync(path, JSON.stringify(m));
}

/** Replace the file `name` of the site in dir and vouch for it in the manifest: only its content differs. */
export function replaceListed(dir, name, content) {
  writeFileSync(join(dir, name), content);
  const bytes = readFileSync(join(dir, name));
  editManifest(dir, (m) => { m.files[name] = { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") }; });
}
