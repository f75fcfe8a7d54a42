"""Words people use for what policy documents call otherwise: a small, hand-kept thesaurus.

A question may say "rubbish dump" where the documents say "landfill".  Each group below holds
words that can stand for one another in a question about public programmes; search looks for a
word's group too, and a sentence that says a synonym counts a little less than one that says
the word itself.  Groups are matched on word stems, so "workers" finds the group of "job".
"""

from __future__ import annotations

import functools

import snowballstemmer

SYNONYM_WEIGHT = 0.6  # a sentence saying a synonym supports the word a little less than the word

GROUPS = (
    "job jobs work worker workers employment employee employees staff workforce",
    "lose lost losing affected redundant redundancy unemployed layoff",
    "help helped support supported assist assistance aid",
    "station plant plants",
    "money revenue revenues funds funding income proceeds cash",
    "collect collected raise raised levy levied revenue",
    "seller sellers supplier suppliers vendor vendors dealer",
    "elderly older senior seniors pensioner pensioners aged",
    "hot heat heatwave heatwaves warm",
    "summer summers heatwave heatwaves",
    "look care cared call visit check",
    "rubbish waste garbage trash refuse litter",
    "dump dumps landfill landfills tip",
    "gas methane",
    "release releasing emit emitting emission emissions leak escape",
    "stop stops prevent capture captured avoid",
    "town towns city cities municipality municipalities urban",
    "soak absorb hold retain store",
    "downpour downpours storm storms rainfall cloudburst heavy",
    "car cars vehicle vehicles automobile",
    "bike bikes bicycle bicycles cycling",
    "train trains rail railway",
    "price cost costs fee fees charge tariff",
    "house houses home homes dwelling dwellings household households",
    "pay payment payments grant grants subsidy subsidies allowance bonus",
    "buy purchase purchases",
    "law laws legislation regulation rule rules",
    "goal goals target targets aim aims objective objectives",
    "fix repair repairs mend",
    "sea coast coastal shore",
    "cut cuts reduce reduction lower",
    "sun solar photovoltaic",
    "school schools education college colleges training course courses",
    "young youth apprentice apprentices apprenticeship",
    "farmer farmers farm farms agriculture agricultural",
    "firm firms company companies business businesses",
    "close closes closed closure shut",
    "electricity power",
    "fail fails failing failed miss misses missed",
    "limit limits cap caps ceiling quota budget budgets",
    "check checks checked verify verified review reviews audit audits monitor inspect",
    "figure figures data statistics numbers",
    "safe safely secure securely",
    "leave park parking",
)

_STEMMER = snowballstemmer.stemmer("english")


@functools.cache
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word.lower()))


@functools.cache
def _groups() -> dict[str, frozenset[str]]:
    related: dict[str, set[str]] = {}
    for group in GROUPS:
        members = group.split()
        for word in members:
            related.setdefault(stem(word), set()).update(w for w in members if stem(w) != stem(word))
    return {key: frozenset(words) for key, words in related.items()}


def synonyms(word: str) -> frozenset[str]:
    """The words that may stand for `word` (none of them sharing its stem)."""
    return _groups().get(stem(word), frozenset())
