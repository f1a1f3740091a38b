/** A small hand-written inbox whose search rankings are computed by hand in the tests. */
import type { Inbox, Question } from "../../../src/recipes/email/types.ts";

const dana = "Dana Whitfield <dana.whitfield@acme.example>";
const ari = "Ari Chen <ari.chen@acme.example>";
const mina = "Mina Okafor <mina.okafor@acme.example>";

export const inbox: Inbox = {
  id: "hand",
  owner: { name: "Ari Chen", first: "Ari", address: "ari.chen@acme.example" },
  people: [],
  projects: ["Apollo", "Borealis"],
  emails: [
    {
      id: "e1",
      from: dana,
      to: [ari],
      date: "2024-04-01T09:00:00Z",
      subject: "Apollo design review",
      body: "The Apollo design review is scheduled for May 3, 2024.",
    },
    {
      id: "e2",
      from: mina,
      to: [ari, dana],
      date: "2024-04-02T10:00:00Z",
      subject: "Slides",
      body: "Send slides for the Apollo review by April 28, 2024.",
    },
    {
      id: "e3",
      from: dana,
      to: [mina],
      date: "2024-04-03T11:00:00Z",
      subject: "Q3 offsite approved",
      body: "I approved $1,200 for the Apollo Q3 offsite.",
    },
    {
      id: "e4",
      from: mina,
      to: [ari],
      date: "2024-04-04T12:00:00Z",
      subject: "Borealis reviews",
      body: "Borealis reviews are done.",
    },
    {
      id: "e5",
      from: ari,
      to: [mina],
      date: "2024-04-05T08:00:00Z",
      subject: "Lunch",
      body: "Noodles on Thursday?",
    },
  ],
};

export const question: Question = {
  id: "hand-q1",
  question: "When is the Apollo design review?",
  answer: "2024-05-03",
  sourceIds: ["e1"],
  inboxId: "hand",
  kind: "meeting_date",
  keywords: ["apollo", "design", "review"],
  decoys: ["2024-04-28"],
};
