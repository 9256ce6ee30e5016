//! Random helpers, dates and built-in word lists.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Datelike, NaiveDate, TimeDelta};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type Rng = ChaCha8Rng;

/// An independent, reproducible stream per (seed, tag): each file has its own generator, so files can be
/// written in parallel and still be byte-identical for a given seed.
pub fn rng_for(seed: u64, tag: &str) -> Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in tag.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    ChaCha8Rng::seed_from_u64(h)
}

/// Threads for files written side by side (the eSMR years; for the next week, every file):
/// this machine's cores, at most 4, since each holds a 1 MiB buffer or, for the next week, a
/// whole base file in memory.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

/// `f` of every item on at most `threads` threads, the results in the items' order. Each thread
/// takes the next item no other has taken, so a long item does not hold the short ones up.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> io::Result<R> + Sync,
) -> io::Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let done: Vec<(usize, io::Result<R>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, items.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![(0, Err(io::Error::other("worker thread panicked")))])
            })
            .collect()
    });
    let mut out: Vec<Option<R>> = items.iter().map(|_| None).collect();
    for (i, r) in done {
        out[i] = Some(r?);
    }
    Ok(out.into_iter().flatten().collect())
}

#[inline]
pub fn chance(r: &mut Rng, p: f64) -> bool {
    r.random::<f64>() < p
}

#[inline]
pub fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
    xs[r.random_range(0..xs.len())]
}

#[inline]
pub fn pick_ref<'a, T>(r: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[r.random_range(0..xs.len())]
}

/// Weighted choice over `(value, weight)` pairs.
pub fn wpick<T: Copy>(r: &mut Rng, xs: &[(T, u32)]) -> T {
    let total: u32 = xs.iter().map(|x| x.1).sum();
    let mut k = r.random_range(0..total.max(1));
    for (v, w) in xs {
        if k < *w {
            return *v;
        }
        k -= w;
    }
    xs[xs.len() - 1].0
}

#[inline]
pub fn range(r: &mut Rng, lo: u64, hi_incl: u64) -> u64 {
    r.random_range(lo..=hi_incl)
}

/// Standard normal (Box–Muller).
pub fn normal(r: &mut Rng) -> f64 {
    let u1: f64 = 1.0 - r.random::<f64>();
    let u2: f64 = r.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn lognormal(r: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(r)).exp()
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Round to `sig` significant digits, giving the double nearest to the decimal (so it prints short).
pub fn round_sig(v: f64, sig: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let e = v.abs().log10().floor() as i32;
    round_dp(v, sig - 1 - e)
}

/// Round to `dp` decimal places (negative `dp` rounds to tens, hundreds…).
pub fn round_dp(v: f64, dp: i32) -> f64 {
    let k = dp.unsigned_abs() as usize;
    if k >= POW10.len() {
        return v;
    }
    let p = POW10[k];
    if dp >= 0 {
        (v * p).round() / p
    } else {
        (v / p).round() * p
    }
}

/// A calendar date; an out-of-range day is clamped to the month's last day.
pub fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    let m = m.clamp(1, 12);
    (1..=d.clamp(1, 31))
        .rev()
        .find_map(|d| NaiveDate::from_ymd_opt(y, m, d))
        .unwrap_or(NaiveDate::MIN)
}

pub fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(TimeDelta::days(n)).unwrap_or(d)
}

pub fn day_num(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

pub fn from_day_num(n: i64) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(n as i32).unwrap_or(NaiveDate::MIN)
}

/// Uniform date in `[lo, hi]`.
pub fn rand_date(r: &mut Rng, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    let (a, b) = (day_num(lo), day_num(hi));
    if b <= a {
        return lo;
    }
    from_day_num(r.random_range(a..=b))
}

/// Date in `[lo, hi]`, mostly in the wet season (October–April).
pub fn rand_wet_date(r: &mut Rng, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    let mut d = rand_date(r, lo, hi);
    for _ in 0..4 {
        if !(5..=9).contains(&d.month()) || chance(r, 0.12) {
            break;
        }
        d = rand_date(r, lo, hi);
    }
    d
}

/// The July 1 – June 30 reporting year (labelled by the year it starts in).
pub fn reporting_year(d: NaiveDate) -> i32 {
    if d.month() >= 7 {
        d.year()
    } else {
        d.year() - 1
    }
}

/// A junk year such as 0201 (a typo of 2016 that `mdy()` accepted) keeping month and day.
pub fn junk_year(r: &mut Rng, d: NaiveDate) -> NaiveDate {
    let y = pick(r, &[201, 208, 209, 210, 1201]);
    NaiveDate::from_ymd_opt(y, d.month(), d.day().min(28)).unwrap_or(d)
}

const MON: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

pub const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Oracle timestamp text as SMARTS exports it: `02-AUG-17 08.03.32.748000 AM`.
pub fn oracle_ts(r: &mut Rng, d: NaiveDate) -> String {
    let h24 = r.random_range(6..19u32);
    let (h12, ampm) = match h24 {
        0 => (12, "AM"),
        1..=11 => (h24, "AM"),
        12 => (12, "PM"),
        _ => (h24 - 12, "PM"),
    };
    let mi = r.random_range(0..60u32);
    let s = r.random_range(0..60u32);
    let ms = r.random_range(0..1000u32);
    let yy = d.year().rem_euclid(100);
    let mon = MON[d.month0() as usize];
    format!(
        "{:02}-{mon}-{yy:02} {h12:02}.{mi:02}.{s:02}.{ms:03}000 {ampm}",
        d.day()
    )
}

/// `HH:MM` on a quarter hour most of the time.
pub fn hhmm(r: &mut Rng, lo_h: u32, hi_h: u32) -> String {
    let h = r.random_range(lo_h..=hi_h);
    let m = if chance(r, 0.75) {
        pick(r, &[0u32, 0, 0, 15, 30, 30, 45])
    } else {
        r.random_range(0..60u32)
    };
    format!("{h:02}:{m:02}")
}

/// Replaces one character with U+FFFD, the way a lost degree sign or accent shows up in the real files.
pub fn with_fffd(r: &mut Rng, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return "\u{FFFD}".to_string();
    }
    let i = r.random_range(0..chars.len());
    let mut out = String::with_capacity(s.len() + 3);
    for (j, c) in chars.iter().enumerate() {
        if j == i {
            out.push('\u{FFFD}');
            if *c == ' ' {
                out.push(' ');
            }
        } else {
            out.push(*c);
        }
    }
    out
}

/// What the publishing script does to every text field: `" \t \r \n \f \v |` become a space.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\t' | '\r' | '\n' | '\u{0C}' | '\u{0B}' | '|' => ' ',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

pub const FIRST_NAMES: &[&str] = &[
    "John",
    "David",
    "Robert",
    "Michael",
    "Mike",
    "James",
    "Jose",
    "Maria",
    "Steve",
    "Richard",
    "Mark",
    "Daniel",
    "Chris",
    "Jennifer",
    "Lisa",
    "Karen",
    "Susan",
    "Paul",
    "Brian",
    "Kevin",
    "Jeff",
    "Scott",
    "Tom",
    "Gary",
    "Carlos",
    "Juan",
    "Luis",
    "Miguel",
    "Anna",
    "Linda",
    "Patricia",
    "Elizabeth",
    "Thomas",
    "William",
    "Joe",
    "Eric",
    "Jason",
    "Ryan",
    "Matt",
    "Andrew",
    "Tony",
    "Ken",
    "Ron",
    "Dave",
    "Greg",
    "Laura",
    "Michelle",
    "Nancy",
    "Sandra",
    "Jessica",
    "Angela",
    "Victor",
    "Raul",
    "Armando",
    "Hector",
    "Sergio",
    "Tim",
    "Bill",
    "Frank",
    "Larry",
    "Peter",
    "Sam",
    "Alan",
    "Vince",
    "Monica",
    "Teresa",
    "Gloria",
    "Irene",
    "Ali",
    "Kim",
    "Hung",
    "Minh",
    "Wei",
    "Raj",
    "Priya",
    "Ahmed",
    "Noah",
    "Emily",
    "Sarah",
    "Kelly",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Garcia",
    "Johnson",
    "Martinez",
    "Jones",
    "Rodriguez",
    "Lopez",
    "Hernandez",
    "Williams",
    "Brown",
    "Davis",
    "Miller",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Perez",
    "Sanchez",
    "Ramirez",
    "Torres",
    "Flores",
    "Rivera",
    "Nguyen",
    "Lee",
    "Kim",
    "Chen",
    "Wong",
    "Nelson",
    "Baker",
    "Hall",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Adams",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
    "Parker",
    "Collins",
    "Edwards",
    "Stewart",
    "Morris",
    "Murphy",
    "Cook",
    "Rogers",
    "Morgan",
    "Peterson",
    "Cooper",
    "Reed",
    "Bailey",
    "Bell",
    "Gomez",
    "Kelly",
    "Howard",
    "Ward",
    "Cox",
    "Diaz",
    "Richardson",
    "Wood",
    "Watson",
    "Brooks",
    "Bennett",
    "Gray",
    "James",
    "Reyes",
    "Cruz",
    "Hughes",
    "Price",
    "Myers",
    "Long",
    "Foster",
    "Sanders",
    "Ross",
    "Morales",
    "Powell",
    "Sullivan",
    "Russell",
    "Ortiz",
    "Jenkins",
    "Gutierrez",
    "Perry",
    "Butler",
    "Barnes",
    "Fisher",
    "Henderson",
    "Coleman",
    "Simmons",
    "Patterson",
    "Tran",
    "Vasquez",
    "Castillo",
    "Mendoza",
    "Patel",
    "Singh",
    "Yamamoto",
    "O'Brien",
    "De La Cruz",
    "Van Dyke",
];

pub const TITLES: &[(&str, u32)] = &[
    ("President", 145),
    ("Owner", 140),
    ("General Manager", 67),
    ("Plant Manager", 66),
    ("Manager", 43),
    ("Vice President", 40),
    ("Environmental Manager", 30),
    ("Operations Manager", 30),
    ("EHS Manager", 20),
    ("Facility Manager", 20),
    ("Superintendent", 15),
    ("Environmental Specialist", 12),
    ("Project Manager", 12),
    ("CEO", 10),
    ("Director", 8),
    ("owner", 6),
    ("Mr", 3),
    ("Safety Coordinator", 6),
    ("Branch Manager", 8),
    ("Yard Manager", 5),
];

pub const STREETS: &[&str] = &[
    "Main St",
    "Industrial Way",
    "Commerce Dr",
    "Harbor Blvd",
    "Airport Rd",
    "Railroad Ave",
    "Oak St",
    "El Camino Real",
    "Valley Blvd",
    "Mission Rd",
    "Santa Fe Ave",
    "Alameda St",
    "Ocean Blvd",
    "Pacific Ave",
    "Grand Ave",
    "Washington Blvd",
    "Jefferson Ave",
    "Olive St",
    "Pine St",
    "Lincoln Ave",
    "Foothill Blvd",
    "Slauson Ave",
    "Rosecrans Ave",
    "Imperial Hwy",
    "Arrow Hwy",
    "Base Line Rd",
    "Vineyard Ave",
    "Cherry Ave",
    "Tyler St",
    "Industry Ave",
    "Business Park Dr",
    "Enterprise Way",
    "Research Dr",
    "Canyon Rd",
    "River Rd",
    "Levee Rd",
    "Farm to Market Rd",
    "Highway 99",
    "Highway 101",
    "Old Redwood Hwy",
];

pub const PROJECT_WORDS: &[&str] = &[
    "Estates",
    "Village",
    "Ranch",
    "Heights",
    "Commons",
    "Plaza",
    "Business Park",
    "Logistics Center",
    "Apartments",
    "Townhomes",
    "Residences",
    "Crossing",
    "Marketplace",
    "Medical Office Building",
    "Warehouse",
    "Distribution Center",
    "Senior Living",
    "Subdivision",
    "Solar Project",
    "Pipeline Replacement",
    "Road Improvements",
    "School Modernization",
    "Self Storage",
    "Retail Center",
    "Mixed Use",
];

pub const RECEIVING_WATERS: &[&str] = &[
    "Pacific Ocean",
    "Los Angeles River",
    "Santa Ana River",
    "San Francisco Bay",
    "San Gabriel River",
    "Sacramento River",
    "San Joaquin River",
    "San Diego Bay",
    "Ballona Creek",
    "Dominguez Channel",
    "Coyote Creek",
    "Guadalupe River",
    "Russian River",
    "Santa Clara River",
    "American River",
    "Kern River",
    "Storm drain",
    "Municipal storm drain system",
    "Unnamed tributary",
    "Newport Bay",
    "Mission Bay",
    "Napa River",
    "Petaluma River",
    "Salinas River",
    "Tijuana River",
    "Alameda Creek",
    "Calleguas Creek",
];

pub const CITIES_FALLBACK: &[(&str, &str, &str)] = &[
    ("Los Angeles", "Los Angeles", "4"),
    ("Long Beach", "Los Angeles", "4"),
    ("Santa Fe Springs", "Los Angeles", "4"),
    ("San Diego", "San Diego", "9"),
    ("Ontario", "San Bernardino", "8"),
    ("Fontana", "San Bernardino", "8"),
    ("Anaheim", "Orange", "8"),
    ("San Jose", "Santa Clara", "2"),
    ("Oakland", "Alameda", "2"),
    ("Sacramento", "Sacramento", "5S"),
    ("Stockton", "San Joaquin", "5S"),
    ("Fresno", "Fresno", "5F"),
    ("Bakersfield", "Kern", "5F"),
    ("Redding", "Shasta", "5R"),
    ("Santa Rosa", "Sonoma", "1"),
    ("Crescent City", "Del Norte", "1"),
    ("Salinas", "Monterey", "3"),
    ("Santa Maria", "Santa Barbara", "3"),
    ("South Lake Tahoe", "El Dorado", "6A"),
    ("Victorville", "San Bernardino", "6B"),
    ("El Centro", "Imperial", "7"),
    ("Palm Desert", "Riverside", "7"),
];

/// California county code used in WDIDs (alphabetical county number, `01` Alameda … `58` Yuba).
pub const COUNTIES: [&str; 58] = [
    "Alameda",
    "Alpine",
    "Amador",
    "Butte",
    "Calaveras",
    "Colusa",
    "Contra Costa",
    "Del Norte",
    "El Dorado",
    "Fresno",
    "Glenn",
    "Humboldt",
    "Imperial",
    "Inyo",
    "Kern",
    "Kings",
    "Lake",
    "Lassen",
    "Los Angeles",
    "Madera",
    "Marin",
    "Mariposa",
    "Mendocino",
    "Merced",
    "Modoc",
    "Mono",
    "Monterey",
    "Napa",
    "Nevada",
    "Orange",
    "Placer",
    "Plumas",
    "Riverside",
    "Sacramento",
    "San Benito",
    "San Bernardino",
    "San Diego",
    "San Francisco",
    "San Joaquin",
    "San Luis Obispo",
    "San Mateo",
    "Santa Barbara",
    "Santa Clara",
    "Santa Cruz",
    "Shasta",
    "Sierra",
    "Siskiyou",
    "Solano",
    "Sonoma",
    "Stanislaus",
    "Sutter",
    "Tehama",
    "Trinity",
    "Tulare",
    "Tuolumne",
    "Ventura",
    "Yolo",
    "Yuba",
];

pub fn county_code(county: Option<&str>) -> Option<usize> {
    let c = county?;
    COUNTIES
        .iter()
        .position(|x| x.eq_ignore_ascii_case(c))
        .map(|i| i + 1)
}

/// eSMR region label for a SMARTS region board code.
pub fn esmr_region(code: &str) -> &'static str {
    match code {
        "1" => "Region 1 - North Coast",
        "2" => "Region 2 - San Francisco Bay",
        "3" => "Region 3 - Central Coast",
        "4" => "Region 4 - Los Angeles",
        "5F" => "Region 5F - Fresno",
        "5R" => "Region 5R - Redding",
        "5S" => "Region 5S - Sacramento",
        "6A" => "Region 6A - South Lake Tahoe",
        "6B" => "Region 6B - Victorville",
        "7" => "Region 7 - Colorado River",
        "8" => "Region 8 - Santa Ana",
        _ => "Region 9 - San Diego",
    }
}

pub fn person(r: &mut Rng) -> (String, String) {
    let first = pick(r, FIRST_NAMES).to_string();
    let last = pick(r, LAST_NAMES).to_string();
    if chance(r, 0.03) {
        (first.to_lowercase(), last.to_lowercase())
    } else if chance(r, 0.02) {
        (first.to_uppercase(), last.to_uppercase())
    } else {
        (first, last)
    }
}

pub fn full_name(r: &mut Rng) -> String {
    let (f, l) = person(r);
    // the publishing script turns stray quotes/tabs into spaces, which leaves double spaces behind
    if chance(r, 0.01) {
        format!("{f}  {l}")
    } else {
        format!("{f} {l}")
    }
}

pub fn phone(r: &mut Rng) -> String {
    let area = pick(
        r,
        &[
            213u32, 310, 323, 562, 626, 714, 909, 951, 619, 858, 760, 408, 510, 415, 650, 916, 209,
            559, 661, 530, 707, 805, 831, 925,
        ],
    );
    let a = r.random_range(200..1000u32);
    let b = r.random_range(0..10000u32);
    match r.random_range(0..100u32) {
        0..=84 => format!("{area}-{a}-{b:04}"),
        85..=92 => format!("({area}) {a}-{b:04}"),
        93..=97 => format!("{area}{a}{b:04}"),
        _ => "999-999-9999".to_string(),
    }
}

pub fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(14)
        .collect();
    out.make_ascii_lowercase();
    if out.is_empty() {
        "company".to_string()
    } else {
        out
    }
}

pub fn email(r: &mut Rng, first: &str, last: &str, org: &str) -> String {
    if chance(r, 0.03) {
        return "abc@xyz.com".to_string();
    }
    let f: String = first
        .chars()
        .filter(char::is_ascii_alphabetic)
        .take(1)
        .collect::<String>()
        .to_lowercase();
    let l = slug(last);
    let dom = pick(r, &["com", "com", "com", "net", "org"]);
    match r.random_range(0..4u32) {
        0 => format!("{f}{l}@{}.{dom}", slug(org)),
        1 => format!("{}.{l}@{}.{dom}", slug(first), slug(org)),
        2 => format!("{f}{l}@gmail.com"),
        _ => format!("{l}{}@{}.{dom}", r.random_range(1..99u32), slug(org)),
    }
}
