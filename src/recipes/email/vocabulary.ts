/** Word lists the inbox generator draws from. */

const spaced = (text: string): string[] => text.trim().split(/\s+/);
const lines = (text: string): string[] =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);

export const FIRST_NAMES: readonly string[] = spaced(`
  Dana Ari Mina Jonas Priya Tomas Lena Omar Grace Felix Nora Ravi Sofia Malik Hana Victor
  Elena Kwame Iris Mateo Yuki Samir Chloe Diego Ingrid Tariq Leah Bruno Amara Oskar
`);

export const LAST_NAMES: readonly string[] = spaced(`
  Whitfield Chen Okafor Berg Raman Novak Fischer Haddad Lindqvist Moreau Petrov Sato Alvarez
  Mensah Kowalski Dubois Nakamura Osei Ferreira Kaur Larsen Romano Tanaka Weber Yilmaz
  Castillo Ahmed Brennan Ivanova Quinn
`);

export const COMPANIES: readonly string[] = spaced(`
  northwind bluepeak hollowtree quillworks ironbridge suncrest lakeside
`);

export const PROJECTS: readonly string[] = spaced(`
  Apollo Borealis Cobalt Driftwood Ember Falcon Granite Harbor Indigo Juniper Kestrel Lumen
  Meridian Nimbus Onyx Pioneer Quartz Redwood Sierra Tundra Umbra Vega Willow Zephyr
`);

export const MEETINGS: readonly string[] = lines(`
  design review
  kickoff
  budget review
  launch review
  retrospective
  planning session
`);

export const EXPENSES: readonly string[] = lines(`
  Q3 offsite
  hardware refresh
  conference travel
  contractor budget
  launch party
  user study
`);

export const ROOMS: readonly string[] = lines(`
  Room 4B
  Room 2A
  Room 7C
  Orion Room
  Atlas Room
  Cedar Room
  Room 3F
  Lantern Room
  Room 5D
  Summit Room
  Room 1E
  Maple Room
`);

export const WORKSTREAMS: readonly string[] = lines(`
  data migration
  onboarding redesign
  security audit
  pricing update
  mobile release
  vendor selection
`);

export const DELIVERABLES: readonly string[] = lines(`
  vendor contract
  final report
  budget proposal
  security checklist
  launch plan
  test plan
`);

/** Unrelated emails: subject and body. */
export const FILLER: readonly (readonly [string, string])[] = [
  ["Lunch on Thursday?", "Anyone up for the new noodle place on Thursday? I can book a table for six."],
  [
    "Parking garage closed",
    "The north parking garage is closed for repairs this week. Please use the south lot.",
  ],
  ["Coffee machine", "The coffee machine on floor 3 is fixed. Thanks for your patience."],
  ["Weekly newsletter", "This week: new hires, the charity run results and a reminder to submit timesheets."],
  ["Timesheets due", "Friendly reminder that timesheets are due by end of day Friday."],
  ["Book club", "Next month we are reading a short novel about lighthouses. Copies are in the kitchen."],
  ["IT maintenance window", "Email may be slow on Saturday night while servers are patched."],
  ["Holiday schedule", "The office will close early before the public holiday. Enjoy the long weekend."],
  [
    "Fire drill",
    "There will be a short fire drill next week. Please follow the wardens to the assembly point.",
  ],
  ["Welcome our new hire", "Please welcome our new colleague who joins the finance team on Monday."],
];
