"""Believable lead data: names, emails, E.164 phones, companies, places, sources, stages, owners, tags, scores.

Contact details are a pure function of the row number (``contact(i)``), so a duplicate can repeat its original's
email and phone without keeping a million rows in memory. Seeded phones never start with +91 99; ingest payloads
use that range, so every lead the load generator sends is new.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

FIRST_NAMES = [
    "Aarav",
    "Aditi",
    "Aditya",
    "Akash",
    "Alok",
    "Aman",
    "Amit",
    "Amrita",
    "Anand",
    "Ananya",
    "Anil",
    "Anita",
    "Anjali",
    "Ankit",
    "Anu",
    "Anupam",
    "Arjun",
    "Arun",
    "Asha",
    "Ashok",
    "Ayesha",
    "Bhavna",
    "Chetan",
    "Deepa",
    "Deepak",
    "Dev",
    "Divya",
    "Farhan",
    "Gaurav",
    "Geeta",
    "Harish",
    "Harsha",
    "Isha",
    "Ishaan",
    "Jaya",
    "Jyoti",
    "Kabir",
    "Kajal",
    "Karan",
    "Kavita",
    "Kiran",
    "Krishna",
    "Kunal",
    "Lakshmi",
    "Madhu",
    "Mahesh",
    "Manish",
    "Maya",
    "Meena",
    "Megha",
    "Mohan",
    "Nandini",
    "Naveen",
    "Neha",
    "Nikhil",
    "Nisha",
    "Omkar",
    "Pallavi",
    "Pankaj",
    "Pooja",
    "Pradeep",
    "Prakash",
    "Pranav",
    "Priya",
    "Priyanka",
    "Rahul",
    "Raj",
    "Rajesh",
    "Rakesh",
    "Ramesh",
    "Ravi",
    "Rekha",
    "Riya",
    "Rohan",
    "Rohit",
    "Sachin",
    "Sagar",
    "Sahil",
    "Sana",
    "Sandeep",
    "Sanjay",
    "Sarita",
    "Shalini",
    "Shreya",
    "Simran",
    "Sneha",
    "Sonia",
    "Suman",
    "Sunil",
    "Suresh",
    "Swati",
    "Tanvi",
    "Tarun",
    "Uma",
    "Varun",
    "Vidya",
    "Vijay",
    "Vikram",
    "Vinod",
    "Vivek",
    "Yash",
    "Zara",
    "Emma",
    "Olivia",
    "Liam",
    "Noah",
    "James",
    "Sophia",
    "Mia",
    "Lucas",
    "Ethan",
    "Grace",
    "Daniel",
    "Chloe",
    "Michael",
    "Sarah",
    "David",
    "Laura",
    "Kevin",
    "Rachel",
]
LAST_NAMES = [
    "Agarwal",
    "Ahmed",
    "Bansal",
    "Banerjee",
    "Bhat",
    "Bose",
    "Chatterjee",
    "Chauhan",
    "Chopra",
    "Das",
    "Desai",
    "Dubey",
    "Gandhi",
    "Ghosh",
    "Gill",
    "Goyal",
    "Gupta",
    "Hegde",
    "Iyer",
    "Jain",
    "Joshi",
    "Kapoor",
    "Kaur",
    "Khan",
    "Kulkarni",
    "Kumar",
    "Malhotra",
    "Mehta",
    "Menon",
    "Mishra",
    "Mukherjee",
    "Naidu",
    "Nair",
    "Pandey",
    "Patel",
    "Patil",
    "Pillai",
    "Prasad",
    "Rao",
    "Reddy",
    "Saxena",
    "Sen",
    "Sethi",
    "Shah",
    "Sharma",
    "Shetty",
    "Singh",
    "Sinha",
    "Srinivasan",
    "Tiwari",
    "Trivedi",
    "Varma",
    "Verma",
    "Yadav",
    "Fernandes",
    "DSouza",
    "Thomas",
    "George",
    "Mathew",
    "Qureshi",
    "Siddiqui",
    "Ansari",
    "Smith",
    "Johnson",
    "Brown",
    "Miller",
    "Davis",
    "Wilson",
    "Taylor",
    "Anderson",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
]
COMPANY_HEADS = [
    "Acme",
    "Apex",
    "Aarohan",
    "Bluechip",
    "Bright",
    "Crest",
    "Deccan",
    "Evergreen",
    "Falcon",
    "Ganga",
    "Global",
    "Greenfield",
    "Horizon",
    "Indus",
    "Jupiter",
    "Kaveri",
    "Lotus",
    "Meridian",
    "Metro",
    "Nexus",
    "Nova",
    "Orbit",
    "Pinnacle",
    "Prime",
    "Quantum",
    "Sahyadri",
    "Sapphire",
    "Shree",
    "Silverline",
    "Skyline",
    "Summit",
    "Sunrise",
    "Tata",
    "Trident",
    "Unity",
    "Vista",
    "Vertex",
    "Zenith",
    "Harbor",
    "Northwind",
    "Redwood",
    "Riverside",
    "Cedar",
    "Oakwood",
    "Keystone",
]
COMPANY_TAILS = [
    "Realty",
    "Infotech",
    "Builders",
    "Enterprises",
    "Traders",
    "Motors",
    "Solutions",
    "Logistics",
    "Healthcare",
    "Foods",
    "Textiles",
    "Pharma",
    "Consultants",
    "Interiors",
    "Exports",
    "Finance",
    "Academy",
    "Clinic",
    "Systems",
    "Developers",
]
COMPANY_FORMS = ["Pvt Ltd", "LLP", "", "", "Pvt Ltd", "Inc", "Co"]
JOB_TITLES = [
    "Owner",
    "Founder",
    "Director",
    "Manager",
    "Purchase Manager",
    "Marketing Head",
    "Operations Manager",
    "CEO",
    "Consultant",
    "Engineer",
    "Sales Executive",
    "Accountant",
]
# (city, ISO 3166-2 subdivision code, postal code prefix)
IN_PLACES = [
    ("Mumbai", "MH", "400"),
    ("Pune", "MH", "411"),
    ("Nagpur", "MH", "440"),
    ("Bengaluru", "KA", "560"),
    ("Mysuru", "KA", "570"),
    ("Chennai", "TN", "600"),
    ("Coimbatore", "TN", "641"),
    ("Hyderabad", "TS", "500"),
    ("New Delhi", "DL", "110"),
    ("Ahmedabad", "GJ", "380"),
    ("Surat", "GJ", "395"),
    ("Kolkata", "WB", "700"),
    ("Jaipur", "RJ", "302"),
    ("Lucknow", "UP", "226"),
    ("Noida", "UP", "201"),
    ("Kochi", "KL", "682"),
    ("Chandigarh", "CH", "160"),
    ("Gurugram", "HR", "122"),
    ("Indore", "MP", "452"),
    ("Bhubaneswar", "OD", "751"),
]
# (city, state code, area code, zip prefix)
US_PLACES = [
    ("New York", "NY", "212", "100"),
    ("San Francisco", "CA", "415", "941"),
    ("Los Angeles", "CA", "213", "900"),
    ("Austin", "TX", "512", "787"),
    ("Houston", "TX", "713", "770"),
    ("Seattle", "WA", "206", "981"),
    ("Chicago", "IL", "312", "606"),
    ("Boston", "MA", "617", "021"),
    ("Newark", "NJ", "973", "071"),
    ("Atlanta", "GA", "404", "303"),
]
PERSONAL_DOMAINS = [
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "yahoo.co.in",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "rediffmail.com",
    "icloud.com",
    "proton.me",
]
# (source, weight, external id prefix or "")
SOURCES = [
    ("facebook", 30, "fb"),
    ("google_ads", 25, "gads"),
    ("form", 15, ""),
    ("api", 12, "SUP"),
    ("csv", 8, ""),
    ("linkedin", 5, "li"),
    ("manual", 3, ""),
    ("webhook", 2, "wh"),
]
# Stage positions 0..5 (New, Contacted, Qualified, Proposal, Won, Lost) and how often leads sit in each.
STAGE_WEIGHTS = [35, 20, 12, 6, 9, 18]
# A handful of tags used a lot, a long tail used rarely.
TAGS = [
    ("follow-up", 12),
    ("whatsapp", 10),
    ("callback", 8),
    ("site-visit", 6),
    ("2bhk", 6),
    ("3bhk", 5),
    ("budget-high", 4),
    ("investor", 3),
    ("vip", 2),
    ("nri", 2),
    ("referral", 1.5),
    ("diwali-offer", 1),
    ("do-not-call", 0.5),
    ("loan-needed", 0.5),
    ("commercial", 0.3),
    ("plot", 0.2),
]
CAMPAIGNS = [
    "pune-2bhk",
    "diwali-offer",
    "mumbai-luxury",
    "blr-tech-park",
    "retarget-30d",
    "brand-search",
    "lookalike-1pct",
    "home-loan-mela",
    "summer-sale",
    "webinar-signup",
]
TIMELINES = ["this month", "3 months", "6 months", "just looking"]
LOST_REASONS = ["Not reachable", "Budget too low", "Bought elsewhere", "Not interested", "Wrong number"]
USER_AGENT = "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile"
CONSENT_TEXT = "I agree to be contacted about my enquiry by phone, SMS, WhatsApp and email."

_MASK = (1 << 64) - 1


def mix(i: int, salt: int) -> int:
    """A 64-bit hash of (i, salt): cheap, deterministic, well spread (splitmix64's finalizer)."""
    x = (i * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9 + 0x632BE59BD9B4E019) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _pick(seq, h: int):
    return seq[h % len(seq)]


def _weighted(items_with_weights):
    """A lookup list where each item appears in proportion to its weight (for O(1) picks by hash)."""
    scale = 1000 / sum(w for _, w in items_with_weights)
    table = []
    for item, weight in items_with_weights:
        table.extend([item] * max(1, round(weight * scale)))
    return table


SOURCE_TABLE = _weighted([((name, prefix), weight) for name, weight, prefix in SOURCES])
STAGE_TABLE = _weighted(list(enumerate(STAGE_WEIGHTS)))
TAG_TABLE = _weighted(TAGS)


@dataclass(frozen=True)
class Contact:
    first_name: str
    last_name: str
    email: str
    phone: str
    company: str
    job_title: str
    city: str
    state: str
    postal_code: str
    country: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def india_mobile(i: int) -> str:
    """A unique (per i < 10⁹) Indian mobile number in E.164 that never starts with +91 99."""
    rest = (i * 387_420_489 + 123_456_789) % 1_000_000_000  # 3^18 is coprime with 10^9: a permutation
    first = "6789"[mix(i, 7) % 4]
    if first == "9" and rest >= 900_000_000:
        first = "8"
    return f"+91{first}{rest:09d}"


def us_phone(i: int) -> str:
    area = US_PLACES[mix(i, 8) % len(US_PLACES)][2]
    exchange = 200 + mix(i, 9) % 800
    line = (i * 4_782_969 + 4321) % 10_000  # 3^14
    return f"+1{area}{exchange:03d}{line:04d}"


def contact(i: int) -> Contact:
    h = mix(i, 1)
    first = _pick(FIRST_NAMES, h)
    last = _pick(LAST_NAMES, h >> 16)
    h2 = mix(i, 2)
    us = h2 % 100 < 12
    has_company = h2 % 7 < 3
    company = job = ""
    if has_company:
        head, tail, form = _pick(COMPANY_HEADS, h2 >> 8), _pick(COMPANY_TAILS, h2 >> 20), _pick(COMPANY_FORMS, h2 >> 32)
        company = f"{head} {tail} {form}".strip()
        job = _pick(JOB_TITLES, h2 >> 40)
    f, la = first.lower(), last.lower()
    pattern = (h >> 32) % 6
    local = (f"{f}.{la}", f"{f}{la}", f"{f}_{la}", f"{f[0]}{la}", f"{f}.{la[0]}", f"{la}.{f}")[pattern]
    if has_company and (h >> 40) % 2:
        domain = f"{head.lower()}{tail.lower()}.{'com' if us else 'in'}"
    else:
        domain = _pick(PERSONAL_DOMAINS, h >> 44)
    email = f"{local}{i}@{domain}"
    phone = us_phone(i) if us else india_mobile(i)
    if us:
        city, state, _, zip_prefix = _pick(US_PLACES, h2 >> 48)
        postal = f"{zip_prefix}{(h2 >> 12) % 100:02d}"
        country = "US"
    else:
        city, state, pin_prefix = _pick(IN_PLACES, h2 >> 48)
        postal = f"{pin_prefix}{(h2 >> 12) % 1000:03d}"
        country = "IN"
    # Some leads leave out the email or the phone; never both.
    reach = (h >> 52) % 100
    if reach < 8:
        email = ""
    elif reach < 13:
        phone = ""
    return Contact(first, last, email, phone, company, job, city, state, postal, country)


# Ingest payloads ---------------------------------------------------------------------------------------------------

IN_STATE_SPELLINGS = [
    ("Pune", "Maharashtra"),
    ("Mumbai", "MH"),
    ("Bengaluru", "Karnataka"),
    ("Chennai", "Tamil Nadu"),
    ("Hyderabad", "TS"),
    ("New Delhi", "Delhi"),
    ("Ahmedabad", "Gujarat"),
    ("Kolkata", "West Bengal"),
    ("Kochi", "Kerala"),
    ("Jaipur", "RJ"),
]


def ingest_payload(n: int, *, run: int) -> dict:
    """A supplier's lead with an email and phone no other lead has (``run`` keeps separate runs apart)."""
    if not 0 <= n < 10_000_000:
        raise ValueError("ingest payload numbers run from 0 to 9,999,999 (seven phone digits)")
    h = mix(n, 100 + run)
    first, last = _pick(FIRST_NAMES, h), _pick(LAST_NAMES, h >> 16)
    digits = f"99{run % 10}{n:07d}"  # +91 99… is never seeded
    style = (h >> 24) % 4
    phone = (f"+91 {digits[:5]} {digits[5:]}", f"0{digits[:5]} {digits[5:]}", f"+91-{digits}", digits)[style]
    city, state = _pick(IN_STATE_SPELLINGS, h >> 28)
    payload = {
        "external_id": f"BENCH-{run}-{n}",
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.r{run}n{n}@{_pick(PERSONAL_DOMAINS, h >> 36)}",
        "phone": phone,
        "city": city,
        "state": state,
        "country": "IN",
        "custom": {"budget": 2_500_000 + (h >> 40) % 40 * 250_000, "timeline": _pick(TIMELINES, h >> 44)},
        "utm": {"source": "facebook", "medium": "paid_social", "campaign": _pick(CAMPAIGNS, h >> 48)},
        "consent": {"given": True, "text": CONSENT_TEXT, "method": "checkbox"},
    }
    if (h >> 52) % 3 == 0:
        payload["tags"] = [_pick(TAG_TABLE, h >> 54)]
    if (h >> 56) % 4 == 0:
        payload["company"] = f"{_pick(COMPANY_HEADS, h >> 20)} {_pick(COMPANY_TAILS, h >> 8)}"
    return payload


def minimal_payload(n: int, *, run: int) -> dict:
    h = mix(n, 200 + run)
    first, last = _pick(FIRST_NAMES, h), _pick(LAST_NAMES, h >> 16)
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.m{run}n{n}@example.com".lower(),
        "phone": f"+9199{run % 10}{n:07d}",
        "company": f"{_pick(COMPANY_HEADS, h >> 20)} {_pick(COMPANY_TAILS, h >> 8)}",
    }


def json_text(value) -> str:
    return json.dumps(value, separators=(", ", ": "))


def rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - benchmark data, nothing secret
