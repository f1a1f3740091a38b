/**
 * Installs a packed tarball of this package, and a few more packages, into a fresh project
 * without the network: a lockfile made from this checkout's own lockfile (the same versions and
 * integrity hashes, tarball URLs on the configured registry) lets `npm ci --offline` take
 * everything from the npm cache that installing this checkout filled.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  [k: string]: unknown;
}

/** Where npm finds `name` from the package at `from`: its own node_modules, then each parent's. */
function locate(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base === "" ? "" : `${base}/`}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (base === "") return undefined;
    const i = base.lastIndexOf("/node_modules/");
    base = i < 0 ? "" : base.slice(0, i);
  }
}

export async function installOffline(opts: {
  root: string;
  project: string;
  tarball: string;
  /** Packages of this checkout's lockfile to install beside the tarball. */
  extra: readonly string[];
}): Promise<void> {
  const lock = JSON.parse(readFileSync(join(opts.root, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const manifest = JSON.parse(readFileSync(join(opts.root, "package.json"), "utf8")) as {
    name: string;
    version: string;
    dependencies: Record<string, string>;
    bin?: Record<string, string>;
    engines?: Record<string, string>;
  };
  const tarballRef = `file:${relative(opts.project, opts.tarball)}`;
  const registry = (await run("npm", ["config", "get", "registry"])).stdout.trim().replace(/\/$/, "");
  const out: Record<string, LockEntry> = {};
  const queue: string[] = [];
  const want = (from: string, name: string, optional: boolean) => {
    const at = locate(lock.packages, from, name);
    if (!at) {
      if (optional) return;
      throw new Error(`${name} (needed by ${from || "the project"}) is not in package-lock.json`);
    }
    if (out[at]) return;
    const { dev: _d, devOptional: _o, ...entry } = lock.packages[at]!;
    // Lockfiles may leave out the registry URL; without it npm would ask the registry for one.
    if (!entry.resolved && entry.version) {
      const pkgName = (entry.name as string | undefined) ?? at.slice(at.lastIndexOf("node_modules/") + 13);
      entry.resolved = `${registry}/${pkgName}/-/${pkgName.split("/").pop()}-${entry.version}.tgz`;
    }
    out[at] = entry;
    queue.push(at);
  };
  const direct: Record<string, string> = { [manifest.name]: tarballRef };
  for (const name of opts.extra) {
    const at = locate(lock.packages, "", name);
    if (!at) throw new Error(`${name} is not in package-lock.json`);
    direct[name] = lock.packages[at]!.version!;
    want("", name, false);
  }
  out[`node_modules/${manifest.name}`] = {
    version: manifest.version,
    resolved: tarballRef,
    dependencies: manifest.dependencies,
    ...(manifest.bin ? { bin: manifest.bin } : {}),
    ...(manifest.engines ? { engines: manifest.engines } : {}),
  };
  for (const name of Object.keys(manifest.dependencies)) want("", name, false);
  while (queue.length > 0) {
    const at = queue.shift()!;
    const e = out[at]!;
    for (const name of Object.keys(e.dependencies ?? {})) want(at, name, false);
    for (const name of Object.keys(e.optionalDependencies ?? {})) want(at, name, true);
    for (const name of Object.keys(e.peerDependencies ?? {}))
      want(at, name, e.peerDependenciesMeta?.[name]?.optional === true);
  }
  const pkg = { name: "consumer", version: "1.0.0", private: true, type: "module", dependencies: direct };
  writeFileSync(join(opts.project, "package.json"), JSON.stringify(pkg, null, 2));
  writeFileSync(
    join(opts.project, "package-lock.json"),
    JSON.stringify(
      {
        name: "consumer",
        version: "1.0.0",
        lockfileVersion: 3,
        requires: true,
        packages: { "": { name: "consumer", version: "1.0.0", dependencies: direct }, ...out },
      },
      null,
      2,
    ),
  );
  await run("npm", ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: opts.project,
    maxBuffer: 64 << 20,
  });
}
