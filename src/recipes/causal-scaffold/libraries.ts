import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  ExperienceLibrary,
  type LessonLimits,
  type LibraryIdentity,
} from "../../training-free/experience-library.ts";

/** The solver's libraries: one per agent, plus one every agent reads. */
export const LIBRARY_OWNERS = ["generator_1", "generator_2", "generator_3", "critic", "shared"] as const;
export type LibraryOwner = (typeof LIBRARY_OWNERS)[number];

export const ID_PREFIX: Record<LibraryOwner, string> = {
  generator_1: "G1",
  generator_2: "G2",
  generator_3: "G3",
  critic: "C",
  shared: "S",
};

export function libraryIdentity(owner: LibraryOwner): LibraryIdentity {
  return { agent: owner, idPrefix: ID_PREFIX[owner] };
}

export function libraryPath(workdir: string, owner: LibraryOwner): string {
  return join(workdir, "data", "grpo_experiences", `${owner}_experiences.json`);
}

/** The libraries of one working directory; each agent reads and writes only its own file. */
export class ExperienceManager {
  readonly workdir: string;
  readonly limits: Partial<LessonLimits> | undefined;
  private readonly libs = new Map<LibraryOwner, ExperienceLibrary>();

  constructor(opts: { workdir: string; limits?: Partial<LessonLimits> }) {
    this.workdir = opts.workdir;
    this.limits = opts.limits;
  }

  path(owner: LibraryOwner): string {
    return libraryPath(this.workdir, owner);
  }

  /** Loaded once and cached; `reload` re-reads after another process wrote the file. */
  library(owner: LibraryOwner): ExperienceLibrary {
    let lib = this.libs.get(owner);
    if (!lib) {
      lib = ExperienceLibrary.load(this.path(owner), libraryIdentity(owner), { limits: this.limits });
      this.libs.set(owner, lib);
    }
    return lib;
  }

  reload(owner: LibraryOwner): ExperienceLibrary {
    this.libs.delete(owner);
    return this.library(owner);
  }

  /**
   * Start from empty libraries, copying any existing files to a backup folder first (a
   * timestamped one under data/grpo_experiences/backups/ unless `into` names one). Returns the
   * backup folder, or undefined when there was nothing to back up.
   */
  resetAll(now: Date = new Date(), into?: string): string | undefined {
    const existing = LIBRARY_OWNERS.filter((o) => existsSync(this.path(o)));
    let backupDir: string | undefined;
    if (existing.length > 0) {
      backupDir =
        into ??
        join(this.workdir, "data", "grpo_experiences", "backups", now.toISOString().replace(/[:.]/g, "-"));
      mkdirSync(backupDir, { recursive: true });
      for (const o of existing) copyFileSync(this.path(o), join(backupDir, `${o}_experiences.json`));
    }
    for (const o of LIBRARY_OWNERS) {
      const lib = ExperienceLibrary.empty(this.path(o), libraryIdentity(o), { limits: this.limits });
      lib.save();
      this.libs.set(o, lib);
    }
    return backupDir;
  }
}
