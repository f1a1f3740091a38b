/**
 * Synthetic inbox generator. Every inbox is built from one Rng: a company, people, a handful of
 * projects, and for each project a few facts (meeting dates, approved amounts, rooms, owners,
 * deadlines). Each fact yields one question whose answer sits in one or two emails, and
 * distractor emails that share the project and most keywords but state other facts, so that
 * finding the right email takes reading, not only keyword search.
 */
import type { Rng } from "../../core/rng.ts";
import type { Email, FactKind, Inbox, Person, Question } from "./types.ts";
import {
  COMPANIES,
  DELIVERABLES,
  EXPENSES,
  FILLER,
  FIRST_NAMES,
  LAST_NAMES,
  MEETINGS,
  PROJECTS,
  ROOMS,
  WORKSTREAMS,
} from "./vocabulary.ts";

const DAY_MS = 86_400_000;

export interface InboxOptions {
  /** Number of projects with facts (default 4). */
  projects?: number;
  /** Facts (questions) per project, at most 5 (default 3). */
  factsPerProject?: number;
  /** Unrelated emails (default 10). */
  fillerEmails?: number;
}

export interface GeneratedInbox {
  inbox: Inbox;
  questions: Question[];
}

interface Draft {
  from: Person;
  to: Person[];
  time: number;
  subject: string;
  body: string;
  id?: string;
}

interface DraftFact {
  kind: FactKind;
  question: string;
  answer: string;
  sources: Draft[];
  keywords: string[];
  decoys: string[];
}

// Spelled out here rather than through Intl so that the text never depends on the ICU build.
const MONTH_NAMES =
  "January February March April May June July August September October November December".split(" ");
const WEEKDAY_NAMES = "Sunday Monday Tuesday Wednesday Thursday Friday Saturday".split(" ");

/** Dates are written in several styles so that answer matching has to normalise them. */
function formatDate(time: number, style: number): string {
  const d = new Date(time);
  const month = MONTH_NAMES[d.getUTCMonth()]!;
  const weekday = WEEKDAY_NAMES[d.getUTCDay()]!;
  const day = d.getUTCDate();
  const year = d.getUTCFullYear();
  switch (style % 4) {
    case 0:
      return d.toISOString().slice(0, 10);
    case 1:
      return `${month} ${day}, ${year}`;
    case 2:
      return `${weekday}, ${month} ${day}, ${year}`;
    default:
      return `${day} ${month} ${year}`;
  }
}

function isoDate(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}

function formatAmount(value: number): string {
  return `$${value.toLocaleString("en-US")}`;
}

function pickDistinct<T>(rng: Rng, items: readonly T[], n: number): T[] {
  return rng.shuffle([...items]).slice(0, n);
}

function makePeople(rng: Rng, company: string, n: number): Person[] {
  const firsts = pickDistinct(rng, FIRST_NAMES, n);
  const lasts = pickDistinct(rng, LAST_NAMES, n);
  return firsts.map((first, i) => {
    const last = lasts[i]!;
    return { first, name: `${first} ${last}`, address: `${first}.${last}@${company}.example`.toLowerCase() };
  });
}

function addressOf(p: Person): string {
  return `${p.name} <${p.address}>`;
}

/** State shared by the fact builders of one inbox. */
class Builder {
  readonly drafts: Draft[] = [];
  readonly facts: DraftFact[] = [];

  constructor(
    readonly rng: Rng,
    readonly owner: Person,
    readonly people: Person[],
    readonly start: number,
  ) {}

  /** A timestamp inside the inbox's window, during office hours. */
  time(): number {
    const day = this.start + this.rng.int(90) * DAY_MS;
    return day + (8 + this.rng.int(10)) * 3_600_000 + this.rng.int(60) * 60_000;
  }

  /** A calendar day 3..40 days after `time`. */
  futureDay(time: number): number {
    const d = new Date(time);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) + (3 + this.rng.int(38)) * DAY_MS;
  }

  colleague(...not: Person[]): Person {
    const pool = this.people.filter((p) => !not.includes(p));
    return this.rng.pick(pool);
  }

  email(from: Person, subject: string, body: string, time: number, to?: Person[]): Draft {
    const recipients = to ?? [this.owner, ...(this.rng.next() < 0.5 ? [this.colleague(from)] : [])];
    const draft = { from, to: recipients.filter((p) => p !== from), subject, body, time };
    if (draft.to.length === 0) draft.to = [this.owner];
    this.drafts.push(draft);
    return draft;
  }

  otherDay(day: number): number {
    return day + (this.rng.next() < 0.5 ? -1 : 1) * (1 + this.rng.int(12)) * DAY_MS;
  }

  meetingDate(project: string, meeting: string): void {
    const rng = this.rng;
    const organiser = this.colleague();
    const sent = this.time();
    const day = this.futureDay(sent);
    const original = this.email(
      organiser,
      `${project} ${meeting}`,
      `Hi all, the ${project} ${meeting} is scheduled for ${formatDate(day, rng.int(4))}. ` +
        `Please come prepared with your updates. Thanks, ${organiser.first}`,
      sent,
    );
    let answerDay = day;
    const sources = [original];
    if (rng.next() < 0.35) {
      // Rescheduled: the later email wins; both are sources because the second only makes
      // sense as an update of the first.
      answerDay = this.otherDay(day);
      sources.push(
        this.email(
          organiser,
          `Re: ${project} ${meeting}`,
          `Update: the ${project} ${meeting} has moved to ${formatDate(answerDay, rng.int(4))}. ` +
            `Sorry for the change. ${organiser.first}`,
          sent + (1 + rng.int(2)) * DAY_MS,
        ),
      );
    }
    const prepDay = this.otherDay(answerDay);
    const collector = this.colleague(organiser);
    this.email(
      collector,
      `Slides for the ${project} ${meeting}`,
      `Please send me your slides for the ${project} ${meeting} by ${formatDate(prepDay, rng.int(4))} ` +
        `so I can merge them. ${collector.first}`,
      sent + rng.int(3) * DAY_MS + 3_600_000,
    );
    const decoys = [isoDate(prepDay)];
    if (answerDay !== day) decoys.push(isoDate(day));
    this.facts.push({
      kind: "meeting_date",
      question: `When is the ${project} ${meeting}?`,
      answer: isoDate(answerDay),
      sources,
      keywords: [project.toLowerCase(), ...meeting.split(" ")],
      decoys,
    });
  }

  approval(project: string, expense: string, otherExpense: string): void {
    const rng = this.rng;
    const approver = this.colleague();
    const requester = this.colleague(approver);
    const amount = (5 + rng.int(195)) * 100;
    let estimate = (5 + rng.int(195)) * 100;
    if (estimate === amount) estimate += 300;
    let other = (5 + rng.int(195)) * 100;
    if (other === amount) other += 200;
    const sent = this.time();
    const sources: Draft[] = [];
    if (rng.next() < 0.5) {
      sources.push(
        this.email(
          approver,
          `${project} ${expense} approved`,
          `I approved ${formatAmount(amount)} for the ${project} ${expense}. Please keep receipts. ${approver.first}`,
          sent,
        ),
      );
    } else {
      // Two-email fact: the amount is in the request, the approval in the reply.
      const request = this.email(
        requester,
        `${project} ${expense} request`,
        `Hi ${approver.first}, could you approve ${formatAmount(amount)} for the ${project} ${expense}? ` +
          `Thanks, ${requester.first}`,
        sent,
        [approver, this.owner],
      );
      const reply = this.email(
        approver,
        `Re: ${project} ${expense} request`,
        `Approved, go ahead with the amount you asked for. ${approver.first}`,
        sent + (1 + rng.int(2)) * DAY_MS,
        [requester, this.owner],
      );
      sources.push(request, reply);
    }
    this.email(
      requester,
      `${project} ${expense} estimate`,
      `First rough estimate for the ${project} ${expense} is ${formatAmount(estimate)}; I will refine it. ` +
        `${requester.first}`,
      sent - (1 + rng.int(5)) * DAY_MS,
    );
    this.email(
      approver,
      `${project} ${otherExpense} approved`,
      `I approved ${formatAmount(other)} for the ${project} ${otherExpense}. ${approver.first}`,
      this.time(),
    );
    this.facts.push({
      kind: "approval",
      question: `How much did ${approver.first} approve for the ${project} ${expense}?`,
      answer: formatAmount(amount),
      sources,
      keywords: [project.toLowerCase(), ...expense.toLowerCase().split(" "), "approved"],
      decoys: [formatAmount(estimate), formatAmount(other)],
    });
  }

  room(project: string, meeting: string, otherMeeting: string): void {
    const rng = this.rng;
    const [room, otherRoom] = pickDistinct(rng, ROOMS, 2) as [string, string];
    const sender = this.colleague();
    const source = this.email(
      sender,
      `Room for the ${project} ${meeting}`,
      `We booked ${room} for the ${project} ${meeting}. The projector there works. ${sender.first}`,
      this.time(),
    );
    const sources = [source];
    const other = this.colleague(sender);
    this.email(
      other,
      `Room for the ${project} ${otherMeeting}`,
      `We booked ${otherRoom} for the ${project} ${otherMeeting}. ${other.first}`,
      this.time(),
    );
    this.facts.push({
      kind: "room",
      question: `Which room is booked for the ${project} ${meeting}?`,
      answer: room,
      sources,
      keywords: [project.toLowerCase(), ...meeting.split(" "), "room"],
      decoys: [otherRoom],
    });
  }

  lead(project: string, workstream: string, otherWorkstream: string): void {
    const rng = this.rng;
    const manager = this.colleague();
    const lead = this.colleague(manager);
    const suggested = this.colleague(manager, lead);
    const otherLead = this.colleague(manager, lead);
    const sent = this.time();
    const sources = [
      this.email(
        manager,
        `${project} ${workstream} lead`,
        `${lead.name} will lead the ${project} ${workstream} starting next week. ${manager.first}`,
        sent,
      ),
    ];
    this.email(
      lead,
      `Re: ${project} ${workstream}`,
      `${suggested.name} was suggested for the ${project} ${workstream} but is fully booked this quarter.`,
      sent - (1 + rng.int(4)) * DAY_MS,
    );
    this.email(
      manager,
      `${project} ${otherWorkstream} lead`,
      `${otherLead.name} will lead the ${project} ${otherWorkstream}. ${manager.first}`,
      this.time(),
    );
    this.facts.push({
      kind: "owner",
      question: `Who is leading the ${project} ${workstream}?`,
      answer: lead.name,
      sources,
      keywords: [project.toLowerCase(), ...workstream.split(" "), "lead"],
      decoys: [suggested.name, otherLead.name],
    });
  }

  deadline(project: string, deliverable: string): void {
    const rng = this.rng;
    const sender = this.colleague();
    const sent = this.time();
    const due = this.futureDay(sent);
    const draftDay = due - (2 + rng.int(7)) * DAY_MS;
    const sources = [
      this.email(
        sender,
        `${project} ${deliverable} deadline`,
        `The final deadline for the ${project} ${deliverable} is ${formatDate(due, rng.int(4))}. ${sender.first}`,
        sent,
      ),
    ];
    const other = this.colleague(sender);
    this.email(
      other,
      `${project} ${deliverable} draft`,
      `Could we review a draft of the ${project} ${deliverable} on ${formatDate(draftDay, rng.int(4))}? ${other.first}`,
      sent + rng.int(3) * DAY_MS + 600_000,
    );
    this.facts.push({
      kind: "deadline",
      question: `What is the deadline for the ${project} ${deliverable}?`,
      answer: isoDate(due),
      sources,
      keywords: [project.toLowerCase(), ...deliverable.split(" "), "deadline"],
      decoys: [isoDate(draftDay)],
    });
  }
}

const KINDS: FactKind[] = ["meeting_date", "approval", "room", "owner", "deadline"];

/** One inbox and its questions, all drawn from `rng`. */
export function generateInbox(rng: Rng, inboxId: string, options: InboxOptions = {}): GeneratedInbox {
  const nProjects = options.projects ?? 4;
  const perProject = Math.min(options.factsPerProject ?? 3, KINDS.length);
  const nFiller = options.fillerEmails ?? 10;
  if (!Number.isInteger(nProjects) || nProjects < 0 || nProjects > PROJECTS.length) {
    throw new Error(`projects must be an integer in [0, ${PROJECTS.length}], got ${nProjects}`);
  }
  if (!Number.isInteger(perProject) || perProject < 0) {
    throw new Error(`factsPerProject must be a non-negative integer, got ${options.factsPerProject}`);
  }
  if (!Number.isInteger(nFiller) || nFiller < 0) {
    throw new Error(`fillerEmails must be a non-negative integer, got ${nFiller}`);
  }
  const company = rng.pick(COMPANIES);
  const people = makePeople(rng, company, 9);
  const owner = people[0]!;
  const colleagues = people.slice(1);
  const start = Date.UTC(2024, 0, 1) + rng.int(300) * DAY_MS;
  const b = new Builder(rng, owner, colleagues, start);
  const projects = pickDistinct(rng, PROJECTS, nProjects);
  for (const project of projects) {
    // Meeting types are drawn per project without repetition so that every question is
    // unambiguous within the inbox.
    const meetings = pickDistinct(rng, MEETINGS, 4);
    const expenses = pickDistinct(rng, EXPENSES, 2) as [string, string];
    const workstreams = pickDistinct(rng, WORKSTREAMS, 2) as [string, string];
    for (const kind of pickDistinct(rng, KINDS, perProject)) {
      if (kind === "meeting_date") b.meetingDate(project, meetings[0]!);
      else if (kind === "approval") b.approval(project, expenses[0], expenses[1]);
      else if (kind === "room") b.room(project, meetings[1]!, meetings[2]!);
      else if (kind === "owner") b.lead(project, workstreams[0], workstreams[1]);
      else b.deadline(project, rng.pick(DELIVERABLES));
    }
  }
  for (let i = 0; i < nFiller; i++) {
    const [subject, body] = rng.pick(FILLER);
    b.email(b.colleague(), subject, body, b.time(), [owner, ...colleagues]);
  }
  // Stable order: by time, ties by creation order; ids follow that order.
  const ordered = b.drafts.map((d, i) => ({ d, i })).sort((x, y) => x.d.time - y.d.time || x.i - y.i);
  const emails: Email[] = ordered.map(({ d }, k) => {
    d.id = `e${k + 1}`;
    return {
      id: d.id,
      from: addressOf(d.from),
      to: d.to.map(addressOf),
      date: new Date(d.time).toISOString().replace(/\.\d{3}Z$/, "Z"),
      subject: d.subject,
      body: d.body,
    };
  });
  const questions: Question[] = b.facts.map((f, k) => ({
    id: `${inboxId}-q${k + 1}`,
    question: f.question,
    answer: f.answer,
    sourceIds: f.sources.map((s) => s.id!),
    inboxId,
    kind: f.kind,
    keywords: f.keywords,
    decoys: f.decoys,
  }));
  return { inbox: { id: inboxId, owner, people: colleagues, projects, emails }, questions };
}

export interface DatasetOptions extends InboxOptions {
  trainSize: number;
  evalSize: number;
  /** Questions for scripted demonstrations, from inboxes of their own (default 0). */
  demoSize?: number;
}

export interface EmailDataset {
  inboxes: Map<string, Inbox>;
  train: Question[];
  eval: Question[];
  demos: Question[];
}

/**
 * Train, held-out and demonstration questions. Each split comes from its own inboxes, so no
 * question, email or inbox is shared between them; the splits are drawn from forks of `rng` in
 * that order, so adding demonstrations changes neither the train nor the held-out questions.
 */
export function generateDataset(rng: Rng, options: DatasetOptions): EmailDataset {
  if (!Number.isInteger(options.trainSize) || options.trainSize < 0) {
    throw new Error(`trainSize must be a non-negative integer, got ${options.trainSize}`);
  }
  if (!Number.isInteger(options.evalSize) || options.evalSize < 0) {
    throw new Error(`evalSize must be a non-negative integer, got ${options.evalSize}`);
  }
  const demoSize = options.demoSize ?? 0;
  if (!Number.isInteger(demoSize) || demoSize < 0) {
    throw new Error(`demoSize must be a non-negative integer, got ${options.demoSize}`);
  }
  const inboxes = new Map<string, Inbox>();
  const build = (prefix: string, size: number, splitRng: Rng): Question[] => {
    const out: Question[] = [];
    for (let k = 0; out.length < size; k++) {
      const { inbox, questions } = generateInbox(splitRng.fork(), `${prefix}-${k}`, options);
      if (questions.length === 0) throw new Error("inbox options produce no questions");
      inboxes.set(inbox.id, inbox);
      out.push(...questions);
    }
    return splitRng.shuffle(out).slice(0, size);
  };
  const trainRng = rng.fork();
  const evalRng = rng.fork();
  const demoRng = rng.fork();
  return {
    inboxes,
    train: build("train", options.trainSize, trainRng),
    eval: build("eval", options.evalSize, evalRng),
    demos: build("demo", demoSize, demoRng),
  };
}
