"""What a customer's own words say beyond their themes: that they are leaving, which
competitor they are looking at, that they want a call, that it is a legal or security
matter, that they want the questions to stop, what would fix it, what it costs them.

Plain patterns in the six survey languages (en, de, fr, es, nl, pt), read sentence by
sentence so each finding keeps the sentence that carries it (the quote an owner sees).
A negation just before a churn phrase ("we are not cancelling") cancels it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


CHURN = _any(
    r"\bcancel+(?:l?ing|l?ed|lation)?\b",
    r"\b(?:not|won'?t|will not|don'?t plan to|aren'?t going to|not going to) renew",
    r"\bnot renewing\b|\bnot to renew\b|\bdecided to (?:leave|move on|switch|go elsewhere)\b",
    r"\bnon-?renewal\b",
    r"\b(?:we(?:'re| are)|i(?:'m| am)) (?:leaving|done with|out)\b",
    r"\bleaving (?:you|for|at the end)",
    r"\b(?:switch|mov|migrat)\w* (?:away|off) (?:from )?(?:you|your|this)",
    r"\bend(?:ing)? (?:our|the) (?:contract|subscription)",
    r"\bterminat(?:e|ing) (?:our|the) (?:contract|subscription|account)",
    r"\bchurn(?:ing)?\b",
    r"\blast (?:month|year|renewal) with you",
    r"\bkündig\w*",
    r"\bnicht verlängern\b",
    r"\bwechseln zu\b",
    r"\brésili\w*",
    r"\bne (?:pas )?renouvel\w*",
    r"\bcancelar\w*|\bcancelamos\b|\bno renovar\w*|\bno vamos a renovar",
    r"\bopzeggen\b|\bzeggen (?:ons )?(?:abonnement|contract) op\b|\bniet verlengen\b",
    r"\bnão (?:vamos )?renovar\b|\bcancelar\b",
)
NEGATED_CHURN = _any(
    r"\b(?:not|never|no plans? to|no intention of|don'?t want to|won'?t be|aren'?t)\s+"
    r"(?:\w+\s+){0,2}(?:cancel|leav|switch|churn)",
    r"\bnicht kündigen\b",
    r"\bpas (?:l')?intention de résilier\b",
)
# A competitor is named after words that say it is being looked at or moved to.
COMPETITOR_CUES = (
    r"\b(?i:switch(?:ing|ed)? to|mov(?:e|ing) to|migrat(?:e|ing) to|go(?:ing)? with"
    r"|evaluat(?:e|ing)|trial(?:l?ing)?|looking at|look at|demo(?:ed)? of|tri(?:ed|al of)"
    r"|test(?:ing)?|compar(?:e|ed|ing) (?:you )?(?:to|with)|pilot(?:ing)?|quote from"
    r"|offer from|cheaper than|alternative(?:s)? like|such as|signed with|moving over to"
    r"|wechseln zu|testen"
    r"|passer à|essayer|évalu\w+|cambiar a|probando|overstappen naar|mudar para)"
)
COMPETITOR = re.compile(
    COMPETITOR_CUES + r"\s+((?:[A-Z][\w.&-]*|[a-z]+\.(?:io|com|ai|app))"
    r"(?:\s+[A-Z][\w.&-]*)?)",
)
COMPETITOR_AFTER = re.compile(
    r"\b((?:[A-Z][\w.&-]+)(?:\s+[A-Z][\w.&-]+)?)\s+(?:is|are|was) (?:cheaper|faster|better|easier)"
    r"|\b((?:[A-Z][\w.&-]+)(?:\s+[A-Z][\w.&-]+)?) (?:does|has|offers|gives us) (?:this|that|it)\b"
)
# Capitalised words that follow those cues and are not a product's name.
NOT_NAMES = frozenset(
    """I We You They It The A An Our Your Their This That These Those Some Other Others
    Another Any Each Every All Other Alternatives Options Excel Sheets Google Monday Tuesday
    Wednesday Thursday Friday Saturday Sunday January February March April May June July
    August September October November December Q1 Q2 Q3 Q4 Ihr Ihre Wir Sie Der Die Das Ein
    Eine Nous Vous Le La Les Un Une Nosotros El Los Las Una We'll We're What Which Yes No""".split()
)
MOVING_TO = _any(
    r"\b(?:switch|mov|migrat)(?:e|es|ed|ing)\s+(?:over\s+|everything\s+)?to\b",
    r"\bgo(?:ing)? with\b|\bsigned with\b|\bwechseln zu\b|\bpasser à\b|\bcambiar a\b",
    r"\boverstappen naar\b|\bmudar para\b",
)
ALTERNATIVES = _any(
    r"\balternatives?\b",
    r"\bother (?:tools?|vendors?|options?|products?|providers?|solutions?)\b",
    r"\blooking (?:around|elsewhere)\b",
    r"\bshop(?:ping)? around\b",
    r"\bcompetitors?\b",
    r"\bAlternativen?\b|\bandere(?:n)? (?:Anbieter|Tools?)\b",
    r"\bautres? (?:outils?|solutions?|fournisseurs?)\b|\bconcurren\w+",
    r"\botras? (?:herramientas?|opciones|soluciones)\b|\bcompetencia\b",
    r"\bandere (?:tools?|aanbieders?)\b|\bconcurrent\w*",
    r"\boutras? (?:ferramentas?|opções|soluções)\b|\bconcorrente\w*",
)
CALL = _any(
    r"\b(?:give me|give us|could you|can you|please|happy to|glad to|like to|want to|let'?s)"
    r"\s+(?:\w+\s+){0,2}(?:call|phone|talk|speak|chat|meet)",
    r"\bcall me\b",
    r"\b(?:jump|hop|get) on a (?:call|quick call|zoom|meeting)\b",
    r"\b(?:schedule|book|set up|arrange) (?:a|some) (?:call|meeting|time)\b",
    r"\bcan we (?:talk|speak|meet)\b",
    r"\brather (?:talk|discuss)\b",
    r"\bruf(?:en Sie)? (?:mich|uns) an\b|\banrufen\b|\btelefonieren\b",
    r"\bappelez-moi\b|\bm'appeler\b|\bun appel\b",
    r"\bllám(?:a|e)me\b|\buna llamada\b",
    r"\bbel (?:me|ons)\b|\bgesprek\b",
    r"\bme liga\b|\buma chamada\b|\bligar-me\b",
)
LEGAL = _any(
    r"\blawyers?\b|\blegal (?:action|team|department|counsel)\b|\blawsuit\b|\bsue\b",
    r"\bGDPR\b|\bDSGVO\b|\bRGPD\b|\bdata protection\b|\bprivacy (?:breach|violation|complaint)",
    r"\b(?:security|data) (?:breach|incident|leak|hole|vulnerability|issue)\b",
    r"\bleak(?:ed|ing)? (?:our|customer|personal) data\b",
    r"\bbreach of contract\b|\bcompliance (?:issue|problem|violation)\b",
    r"\bAnwalt\b|\bDatenschutz\w*|\bavocat\b|\bfuite de données\b|\babogado\b|\badvocaat\b",
    r"\badvogado\b|\bsicherheitslücke\b|\bfaille de sécurité\b",
)
STOP = _any(
    r"^\s*(?:stop|enough|no more|unsubscribe|leave me alone)\b",
    r"\bstop (?:asking|emailing|messaging|contacting|with the questions)\b",
    r"\bno more questions\b|\b(?:that'?s|that is) (?:all|enough)\b(?! (?:the|of))",
    r"\bdon'?t (?:want to answer|contact me)\b|\bi'?m done (?:here|answering)\b",
    r"\btoo many questions\b|\bnot interested in (?:a|this) (?:survey|conversation|chat)\b",
    r"\bkeine (?:weiteren )?Fragen mehr\b|\bhören Sie auf\b|\bgenug\b",
    r"\bplus de questions\b|\barrêtez\b|\bça suffit\b",
    r"\bno más preguntas\b|\bbasta\b|\bgeen vragen meer\b|\bstoppen\b|\bchega\b",
)
FIX = _any(
    r"\b(?:i|we)(?:'d| would) (?:like|love|want|need)\b",
    r"\b(?:i|we) (?:just )?(?:wish|want|need|expect)\b",
    r"\bif (?:you|it|there) (?:could|would|had|were|was)\b",
    r"\bplease (?:add|fix|make|give|let|bring|support)\b",
    r"\b(?:you|it) should\b|\bwhat (?:would|could) (?:help|fix)\b",
    r"\bneeds? to (?:be|have|work|support|let)\b",
    r"\bfix (?:the|it|this)\b|\bbring back\b|\bgive us\b",
    r"\b(?:wir|ich) (?:bräuchten|brauchen|wünsche\w*|hätten gern)\b|\bwenn (?:Sie|es)\b",
    r"\b(?:il faudrait|nous voudrions|j'aimerais|si vous pouviez)\b",
    r"\b(?:necesitamos|nos gustaría|si pudieran)\b|\b(?:we zouden graag|als jullie)\b",
    r"\b(?:precisamos|gostaríamos|se vocês)\b",
)
IMPACT = _any(
    r"\bcost(?:s|ing)? (?:us|me|our)\b|\blost\b|\bwast(?:e|ed|ing)\b",
    r"\b\d+\s*(?:hours?|days?) (?:a|per|every|each) (?:day|week|month)\b",
    r"\b(?:hours?|days?|weeks?) of (?:work|time|effort|manual)\b",
    r"\b\d+\s*(?:people|users|customers|deals?|engineers|agents)\b"
    r" (?:can'?t|couldn'?t|are|were|lost)",
    r"\bblock(?:s|ed|ing)?\b|\bcan'?t (?:work|ship|close|bill|invoice|onboard|do our)",
    r"\b(?:our|my) (?:team|customers?|clients?|boss|manager|ceo|board)"
    r" (?:is|are|was|were|has|have|can)",
    r"\bdeadline\b|\brevenue\b|\bescalat\w+\b|\bmanual(?:ly)? work\b|\bworkaround\b",
    r"\bStunden (?:pro|jede)\b|\bheures par\b|\bhoras (?:por|a la)\b|\buren per\b",
)
LOYAL = _any(
    r"\b(?:for|over) (?:\w+ )?(?:years|a long time)\b|\blong[- ]time\b|\bsince (?:19|20)\d\d\b",
    r"\b(?:usually|normally|always been|always) (?:great|good|happy|reliable|love|loved)",
    r"\bfirst time\b|\bnever had (?:a|an|any) (?:problem|issue)\b|\bbig fans?\b",
    r"\bwe love (?:the|your) (?:product|tool)\b|\bloyal\b",
    r"\bseit Jahren\b|\bdepuis des années\b|\bdesde hace años\b|\bal jaren\b|\bhá anos\b",
)
INVESTED = _any(
    r"\b(?:we|our team|the whole team|everyone) (?:rel(?:y|ies)|depend)s? on\b",
    r"\b(?:we|i) (?:really )?want (?:this|it|you) to (?:work|succeed)\b",
    r"\b(?:we|i)(?:'ve| have) (?:invested|built|put)\b|\bcore (?:of|to) our\b",
    r"\bevery day\b|\bdaily\b|\bwhole company\b|\brolled (?:it )?out\b",
    r"\bwir nutzen\b|\bnous utilisons\b|\busamos\b|\bwe gebruiken\b",
)
YES = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|ok(?:ay)?|please|absolutely|definitely|correct|right|exactly"
    r"|spot on|that'?s (?:right|it|correct)|sounds good|happy to|why not|ja|gerne|genau|richtig"
    r"|oui|volontiers|exactement|c'est ça|sí|si|claro|exacto|correcto|klopt|graag|precies"
    r"|sim|certo|exato|isso)\b",
    re.I,
)
NO = re.compile(
    r"^\s*(?:no|nope|nah|not (?:really|quite|exactly|now|needed)|no thanks|don'?t|rather not"
    r"|nein|nicht|non|pas vraiment|nee|niet|não)\b",
    re.I,
)

SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text) if s.strip()]


@dataclass
class Signals:
    """What one text says; each finding with the sentence that carries it."""

    churn: str = ""
    competitor: str | None = None
    competitor_quote: str = ""
    alternatives: bool = False
    call: str = ""
    legal: str = ""
    stop: bool = False
    fix: str = ""
    impact: str = ""
    loyal: str = ""
    invested: str = ""
    quotes: list[str] = field(default_factory=list)

    @property
    def urgent(self) -> list[tuple[str, str]]:
        """The findings that cannot wait: (kind, quote)."""
        found = []
        if self.churn:
            found.append(("churn intent", self.churn))
        if self.competitor:
            found.append((f"evaluating {self.competitor}", self.competitor_quote))
        if self.call:
            found.append(("asked for a call", self.call))
        if self.legal:
            found.append(("legal or security complaint", self.legal))
        return found


def competitor_in(sentence: str) -> str | None:
    for match in COMPETITOR.finditer(sentence):
        name = _name(match.group(1))
        if name:
            return name
    for match in COMPETITOR_AFTER.finditer(sentence):
        name = _name(match.group(1) or match.group(2))
        if name:
            return name
    return None


def _name(raw: str) -> str | None:
    words = [w.strip(".,;:!?)(\"'") for w in raw.split()]
    words = [w for w in words if w and w not in NOT_NAMES]
    if not words or words[0].lower() in {"us", "you", "it"}:
        return None
    return " ".join(words)[:60]


def read(text: str) -> Signals:
    """Every signal in `text`, sentence by sentence."""
    found = Signals()
    for sentence in sentences(text):
        if CHURN.search(sentence) and not NEGATED_CHURN.search(sentence):
            found.churn = found.churn or sentence
        name = competitor_in(sentence)
        if name and not found.competitor:
            found.competitor, found.competitor_quote = name, sentence
        if name and MOVING_TO.search(sentence) and not NEGATED_CHURN.search(sentence):
            found.churn = found.churn or sentence  # "we are switching to Acme"
        if ALTERNATIVES.search(sentence):
            found.alternatives = True
        if CALL.search(sentence):
            found.call = found.call or sentence
        if LEGAL.search(sentence):
            found.legal = found.legal or sentence
        if STOP.search(sentence):
            found.stop = True
        if FIX.search(sentence):
            found.fix = found.fix or sentence
        if IMPACT.search(sentence):
            found.impact = found.impact or sentence
        if LOYAL.search(sentence):
            found.loyal = found.loyal or sentence
        if INVESTED.search(sentence):
            found.invested = found.invested or sentence
    if found.competitor and not found.alternatives:
        found.alternatives = True
    return found


def says_yes(text: str) -> bool | None:
    """A yes or a no at the start of an answer; None when it is neither."""
    if NO.match(text):
        return False
    if YES.match(text):
        return True
    return None


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))
