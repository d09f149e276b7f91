"""English person names (``PERSON``): a first-name gazetteer and capitalisation, or context.

A capitalised word in the first-name gazetteer (US Census 1990, see
``infra/training/make_first_names.py``; not Faker's lists, which make the test sets) followed
by capitalised words (the surname), or by a lower-case word inside a sentence (Kelli
moved), or after a weak context word (and, to, with); or any capitalised words after
a title or a strong context word (Mr, Dr, patient, Dear, Name:, signed, contact).
First names that are also common words (Will, May, Grant) need a surname or context.
Forms write names their own way: "Last, First" alone in a field (Garcia, Maria R.;
THOMPSON, Robert J.), hyphenated first names of two census names (Mary-Kate), a first
name alone that ends a list of names or heads a chat export's line (Melissa  10:02 AM),
fills a field or a cell (Organizer: Anthony) or heads a label's sentence (S: Alec reports).

Letter case is read from the original text (normalisation folds it); the words before
a run are read lower-cased, as a stream's released context is. Offsets returned are
normalised, like every finder's.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from functions.filtering.normalise import Normalised


def _words(text: str) -> list[str]:
    return text.split()


# Smith-Jones, O'Brien, D'Angelo, McDonald, Murphy-O'Neil; not 's
_PREFIX = r"(?:[A-Z]['’](?=[A-Z])|Ma?c(?=[A-Z]))"
_TOKEN = rf"{_PREFIX}?[A-Z][a-z]+(?:-(?:[A-Z]['’])?[A-Z]?[a-z]+|['’][A-Z][a-z]+)?"
_CAPS = re.compile(rf"\b{_TOKEN}(?:,? (?:[A-Z]\.|{_TOKEN}))*")
_WORD = re.compile(rf"[A-Z]\.|{_TOKEN}")
TITLES = frozenset(_words("mr mrs ms miss mx dr prof sir madam mister dame lady lord"))
# words after which capitalised words are a name whatever they are
CONTEXT = frozenset(
    _words(
        """name patient customer client contact employee applicant recipient attn dear signed
    cardholder holder insured beneficiary tenant landlord passenger guest member student
    sincerely regards by from cc to physician nurse officer agent signature"""
    )
)
# jobs and roles: a name after them when its first word is a first name or a surname
# follows (Candidate: Ryan; branch manager Mark O'Hara; not "Teacher Appreciation")
ROLES = frozenset(
    _words(
        """candidate interviewer interviewee witness plaintiff defendant teacher accountant
    adjuster manager supervisor director worker caseworker doctor surgeon therapist
    pharmacist technician clerk teller cashier courier driver representative rep advisor
    adviser counselor coach instructor professor guardian spouse owner borrower lender
    guarantor payee sender speaker reviewer approver attorney lawyer counsel judge detective
    sergeant captain lieutenant deputy inspector paramedic dentist midwife caregiver
    resident intern trainee volunteer husband wife son daughter mother father brother sister
    widow widower fiance fiancee partner complainant victim suspect organizer organiser host"""
    )
)
# first names that are also places: alone, a name only before a possessive or a verb of
# speech, never after a place preposition (Jordan is a country; moved to Virginia)
PLACES = frozenset(
    _words(
        """jordan georgia virginia florence austin dallas charlotte victoria sydney madison
    denver houston orlando savannah aurora raleigh tyler chelsea paris india kenya israel
    lincoln jackson carolina dakota nevada helena augusta cleveland kent sofia santiago
    florida phoenix london berlin vienna china cuba peru chad"""
    )
)
_PLACE_BEFORE = frozenset(
    _words("in at near from to across visit visited visiting via toward towards into outside of")
)
# function words that are also in the census list (An, In): never a first name
_NEVER = frozenset(_words("an in on at to as so or if by do is it of no"))
_PLACE_TAILS = frozenset(
    _words(
        """kong city county beach island islands valley springs falls heights bay harbor
    harbour lake river mountains hills state province republic kingdom airport station
    park square bridge canyon desert coast peninsula grove groves garden gardens village
    township borough estates"""
    )
)
_GREETINGS = frozenset(_words("hi hello hey dear thanks thank cc attn"))
_DETERMINERS = frozenset(_words("the a an our your its their every"))
# of those, the ones that are only context in front of a capitalised word
_WEAK_CONTEXT = frozenset({"by", "from", "cc", "to", "and", "with", "hi", "hello", "thanks"})
# capitalised words that are not part of a name (first names that are also words are
# in AMBIGUOUS: they need a surname or context)
STOP = frozenset(
    _words(
        """the a an this that these those i we you he she it they my our your his her its their
    and or but if then so as at in on of for with without about after before during monday
    tuesday wednesday thursday friday saturday sunday january february march april may june
    july august september october november december hello hi hey thanks thank please yes no
    street st avenue ave road rd drive dr lane ln court ct boulevard blvd suite apt unit
    company inc ltd llc corp university hospital school bank city county state north south
    east west new north street group team office department center centre service services
    customer patient contact name dear mr mrs ms dr prof homeowner homeowners residents
    neighbor neighbors neighbour neighbours parents friends colleagues everyone valued
    subscriber subscribers participants shareholders policyholder policyholders voter voters"""
    )
)
AMBIGUOUS = frozenset(
    _words(
        """will may june april august grant mark bill rose hope joy faith art chase frank guy jack
    pat sue dean don carol ray lee van chance page hunter summer autumn dawn eve ivy iris
    lily daisy holly ruby pearl crystal amber jade sky star sunny rich price king young brown
    green white black gray grey long short love honey angel china christian king major
    sterling lane bell case cash clay cliff dale dell drew ford gay glen hall herb jean
    jewel joy lou lucky mason miles nick norm page penny rod rock roy sandy shelby storm
    tad tanner terry ward wash wade will"""
    )
)


@cache
def first_names() -> frozenset[str]:
    """The English first-name gazetteer (lower case; ``data/first_names_en.txt``)."""
    text = (resources.files("functions.filtering") / "data" / "first_names_en.txt").read_text(
        encoding="utf-8"
    )
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def en_names(norm: Normalised, pos: int) -> list[tuple[int, int, str]]:
    """English names in ``norm`` starting at or after normalised index ``pos``."""
    original, found = norm.original, []
    low_start = norm.span(pos, pos + 1)[0] if pos < len(norm.text) else len(original)
    names = first_names()
    for run in _CAPS.finditer(original, low_start):
        before = original[max(0, run.start() - 24) : run.start()].lower()
        if _plain_word(run, before, names) or _HOUSE_NUMBER.search(before):
            continue
        words = list(_WORD.finditer(original, run.start(), run.end()))
        field = original[max(0, run.start() - 24) : run.start()]
        for span in _last_first(words, field, names) or _name_spans(words, before, names):
            start, end = norm.index(span[0]), norm.index(span[1])
            found.append((start, end, span[2]))
    return found


# a house number right before a run: 5004 Anthony Via is a street, not a person
_HOUSE_NUMBER = re.compile(r"\d \Z")


def _plain_word(run: re.Match[str], before: str, names: frozenset[str]) -> bool:
    """A lone capitalised word that no rule can make a name (most sentence starts):
    not a first name, title or context word, and after no title or context word."""
    word = run.group().lower()
    if " " in word or _first(word, names) or word in TITLES or word in CONTEXT:
        return False
    previous = _last_word(before)
    return previous not in TITLES and (previous not in CONTEXT or previous in _WEAK_CONTEXT)


def _name_spans(
    words: list[re.Match[str]], before: str, names: frozenset[str]
) -> list[tuple[int, int, str]]:
    """Names among one run of capitalised words; ``before``: the text before the run."""
    out: list[tuple[int, int, str]] = []
    previous = _last_word(before)
    sentence_start = not before.strip() or before.rstrip()[-1:] in ".!?:\n"
    i = 0
    while i < len(words):
        word = words[i].group().lower().rstrip(".")
        first = _first(word, names)
        if word in TITLES or word in CONTEXT or word in _NEVER or (word in STOP and not first):
            previous, sentence_start, i = word, False, i + 1
            continue
        surname = _take_surname(words[i + 1 : i + 3])
        end = (surname[-1] if surname else words[i]).end()
        rule = ""
        if previous in TITLES:
            rule = "en_title"
        elif previous in CONTEXT and previous not in _WEAK_CONTEXT:
            rule = "en_context"
        elif previous in ROLES and (first or surname):
            rule = "en_role"
        elif first and surname:
            # Mark Stanton's, Dean Martinez: (but not "Grant Access")
            plain = not (sentence_start and i == 0) or _possessive_or_said(surname[-1])
            if word not in AMBIGUOUS or plain:
                rule = "en_name"
        elif (
            first
            and word not in AMBIGUOUS
            and (
                previous in _WEAK_CONTEXT
                or _possessive_or_said(words[i])
                or _listed(out, words[i])
                or (len(words) == 1 and word not in PLACES and _alone_in_field(words[i], before))
                or _TIME_NEXT.match(words[i].string, words[i].end()) is not None
                or (not sentence_start and _LOWER_NEXT.match(words[i].string, words[i].end()))
            )
        ):
            rule = "en_name"
        if rule and not _plausible(word, previous, rule, surname, words[i]):
            rule = ""
        if rule:
            out.append((words[i].start(), end, rule))
            i += 1 + len(surname)
        else:
            i += 1
        previous, sentence_start = word, False
    return out


# a time right after a name: a chat export's header (Gloria  10:02 AM, Ryan 9:41)
_TIME_NEXT = re.compile(r"[ \t]{1,4}\[?\d{1,2}:\d{2}(?!\d)")


def _alone_in_field(word: re.Match[str], before: str) -> bool:
    """A first name alone in a form's field or a table's cell (Organizer: Anthony;
    a tab-separated row), or heading a label's sentence (S: Michael reports pain)."""
    if _FIELD_START.search(before) is None:
        return False
    if _FIELD_END.match(word.string, word.end()) is not None:
        return True
    return before.rstrip().endswith(":") and _LOWER_NEXT.match(word.string, word.end()) is not None


def _listed(out: list[tuple[int, int, str]], word: re.Match[str]) -> bool:
    """A first name alone right after a name and a comma (Karen Lowe, Brian Ortiz, Meg):
    an enumeration of people goes on."""
    return bool(out) and word.string[out[-1][1] : word.start()] == ", "


def _plausible(
    word: str, previous: str, rule: str, surname: list[re.Match[str]], first: re.Match[str]
) -> bool:
    """Whether a gazetteer match is a person rather than a place or a thing: not after
    a determiner (the Denver office), and a first name that is also a place, alone, only
    before a possessive or a verb of speech and never after a place preposition."""
    if rule != "en_name":
        return True
    if previous in _DETERMINERS:
        return False
    if surname and surname[-1].group().lower() in _PLACE_TAILS:
        return False  # Hong Kong, Virginia Beach, Jordan Valley
    if surname or word not in PLACES:
        return True
    after = first.string[first.end() : first.end() + 9]
    if previous in _GREETINGS:
        return True
    return previous not in _PLACE_BEFORE and after.startswith(_SPEECH)


# "Last, First" as forms, dockets and rosters write it: a surname (capitalised, or in
# capitals before the run: SMITH, Ashley), a comma, a first name, an optional initial,
# alone in its field (after a label, a line's start, a quote or "by"; before a line's
# or a sentence's end, a bar or a quote)
_CAPS_SURNAME = re.compile(r"(?<![\w'’])[A-Z][A-Z'’\-]{1,30}, \Z")
_FIELD_START = re.compile(r"(?:\A|[:\n\"(|\t]|  )[ \t]*\Z")
_FIELD_END = re.compile(r"[ \t]*(?:[\n\t.|\")\];,]|\Z)")
_NOT_SURNAME = frozenset(
    _words(
        """yesterday today tomorrow tonight okay ok sorry congrats congratulations welcome hey
    morning evening afternoon goodbye bye cheers update note reminder also however meanwhile
    first second third finally again well oh yes no yeah yep nope sure right great cool nice
    wow"""
    )
)


def _last_first(
    words: list[re.Match[str]], field: str, names: frozenset[str]
) -> list[tuple[int, int, str]]:
    """One "Last, First" name filling ``words`` (a run), or nothing; ``field``: the
    original text just before the run."""
    caps = _CAPS_SURNAME.search(field)
    lead = words[:0] if caps else words[:1]
    rest = words[len(lead) :]
    if not rest or len(rest) > 2 or (len(rest) == 2 and not _INITIAL.fullmatch(rest[1].group())):
        return []
    first = rest[0].group().lower()
    if not _first(first, names) or first in STOP:  # the form decides: Ward, Christian
        return []
    if caps is None:  # the surname is the run's first word
        surname = lead[0].group().lower()
        text = lead[0].string
        if text[lead[0].end() : rest[0].start()] != ", " or not _surname_like(surname):
            return []
        start, before = lead[0].start(), field
    else:  # the surname in capitals just before the run
        start = rest[0].start() - (len(field) - caps.start())
        before = field[: caps.start()]
        if not _surname_like(caps.group()[:-2].lower()):
            return []
    end = rest[-1].end()
    if _FIELD_END.match(rest[-1].string, end) is None or not _field_start(before):
        return []
    return [(start, end, "en_last_first")]


def _surname_like(word: str) -> bool:
    return not (
        word in STOP or word in TITLES or word in CONTEXT or word in ROLES or word in _NEVER
    ) and not (word in _NOT_SURNAME or word.endswith("ly"))


def _field_start(before: str) -> bool:
    """A label, a line's start, a quote or a bar before the surname, or a context or
    role word (filed by, Defendant)."""
    if _FIELD_START.search(before) is not None:
        return True
    previous = _LAST_WORD.search(before.lower())
    return previous is not None and (previous.group(1) in CONTEXT or previous.group(1) in ROLES)


def _first(word: str, names: frozenset[str]) -> bool:
    """A first name of the gazetteer, or a hyphenated pair of them (Mary-Kate, Jo-Ann:
    the census lists the parts, not the pairs; French pairs end in parts it lacks:
    Jean-Luc, Marie-Yves)."""
    if word in names:
        return True
    head, _, tail = word.partition("-")
    return bool(tail) and head in names and (tail in names or tail in _FRENCH_TAILS)


# second parts of French compound first names that the US census does not list
_FRENCH_TAILS = frozenset(
    _words(
        """luc baptiste yves francois françois philippe christophe sebastien sébastien
    noel noël eve ève helene hélène therese thérèse josee josée andre andré rene rené
    benoit benoît laure aimee aimée"""
    )
)


_INITIAL = re.compile(r"[A-Z]\.")


def _take_surname(rest: list[re.Match[str]]) -> list[re.Match[str]]:
    """The words after a first name that read as middle initial and surname(s)."""
    taken: list[re.Match[str]] = []
    for w in rest[:2]:
        low = w.group().lower().rstrip(".")
        initial = _INITIAL.fullmatch(w.group()) is not None
        if not initial and (low in STOP or low in TITLES or low in CONTEXT):
            break
        taken.append(w)
        if not w.group().endswith("."):  # an initial ("J.") is followed by the surname
            break
    if taken and taken[-1].group().endswith("."):
        taken.pop()
    return taken


# a single first name inside a sentence, followed by a lower-case word (Kelli moved)
_LOWER_NEXT = re.compile(r" [a-z]")
_AFTER_NAME = (
    *("'s ", "’s ", ",", ":", " said", " says", " called", " calls", " wrote", " asked"),
    *(" told", " replied", " phoned", " emailed", " signed", " is ", " was ", " will ", " has "),
    *(" and ", " attended", " wants", " asked", " (", " ("),
)


_SPEECH = (*_AFTER_NAME[:2], *_AFTER_NAME[4:15])  # not " is ", " was ", " and "…
# a verb in the past after a name (Craig approved, Jill O'Sullivan signed)
_PAST_VERB = re.compile(r" (?:from |[a-z]{3,}ed\b)")


def _possessive_or_said(word: re.Match[str]) -> bool:
    after = word.string[word.end() : word.end() + 9]
    return after.startswith(_AFTER_NAME) or _PAST_VERB.match(word.string, word.end()) is not None


def _last_word(text: str) -> str:
    """The word just before a run (lower case); a sentence's last word is not context,
    only a title is (``the agent. Cultural`` against ``Mr. Smith``)."""
    m = _LAST_WORD.search(text)
    if m is None or (m.group(2) == "." and m.group(1) not in _DOTTED_TITLES):
        return ""
    if m.group(2) == ":" and m.group(1) in _HEADERS:
        return "contact"  # a mail header (From: Crystal Peterson) is a strong context
    if m.group(2) == ":" and m.group(1) == "by":
        # a label of who did it (Reviewed-by:, Prepared by:) is a role word: a first name
        # or a surname must follow (not "Prepared by: Accounting Team")
        return "approver"
    return m.group(1)


_HEADERS = frozenset(_words("from to cc bcc"))


_DOTTED_TITLES = TITLES - {"miss", "sir", "madam", "mister", "dame", "lady", "lord"}
_LAST_WORD = re.compile(r"([a-z]+)([.:,]?)\s*$")
