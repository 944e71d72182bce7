"""The follow-up conversation's own sentences, in the six survey languages.

Each question is one sentence ending in the only question mark of its message; none
apologises, offers anything or mentions a better score (the message linter checks every
message the engine sends, and a test checks every sentence here in every language).
A theme's probes are the admin's words (Settings → Themes) and are used as written; the
shipped English probes have translations here, used while the admin has not changed them.
"""

from __future__ import annotations

from typing import Final

EN: Final[dict[str, object]] = {
    "thanks_comment": "Thank you for your {score} out of 10, {first_name}, and for telling us: “{quote}”.",
    "thanks": "Thank you for your {score} out of 10, {first_name}.",
    "open": "What was the main experience behind your score?",
    "general_probe": "What happened the last time you ran into it?",
    "impact": "How much does this get in your team's way?",
    "alternatives": "What are you comparing us with?",
    "fix": "What would fix this for you?",
    "confirm": "If I understood you: {understanding}. What did I get wrong or miss, if anything?",
    "call": "Would a 15-minute call with {owner_first_name} be useful?",
    "call_booking": "Would a 15-minute call with {owner_first_name} be useful? You can also pick a time: {booking}",
    "ack": ["Thank you, that helps.", "I see.", "Understood.", "That is clear, thank you."],
    "ack_correction": "Thank you for putting me right.",
    "close": "Thank you, {first_name}. {owner_name} has all of this and will come back to you by {date} with what happens next.",
    "close_call": "Thank you, {first_name}. {owner_name} will call you and come back to you by {date} with what happens next.",
    "close_stop": "Of course, no more questions. {owner_name} has what you wrote and will reply by {date}.",
    "close_short": "Thank you, {first_name}, that is enough to go on. {owner_name} will come back to you by {date}.",
    "and_fix": "and what would help is “{fix}”",
    # The page around the conversation
    "title": "Your {score}/10 for {product}",
    "intro": "{owner_name} reads every answer here.",
    "answer_label": "Your answer",
    "send": "Send",
    "sent_owner": "Sent. {owner_name} will read it.",
    "ended": "This conversation has ended. Anything you write here still reaches {owner_name}.",
    "taken_over": "{owner_name} is answering you personally now.",
    "expired": "This conversation link has expired. Write to {owner_email} and it reaches {owner_name} directly.",
    "too_long": "Please keep your answer under {limit} characters.",
    "empty": "Please write an answer first.",
    "too_many": "Too many messages just now. Please wait a minute and try again.",
    "you": "You",
    "offer": "If it is easier, answer in a short conversation instead (a few questions, two minutes): {url}",
}

_TRANSLATIONS: Final[dict[str, dict[str, object]]] = {
    "en": EN,
    "de": {
        "thanks_comment": "Danke für Ihre {score} von 10, {first_name}, und dafür, dass Sie uns geschrieben haben: „{quote}“.",
        "thanks": "Danke für Ihre {score} von 10, {first_name}.",
        "open": "Welche Erfahrung war für Ihre Bewertung ausschlaggebend?",
        "general_probe": "Was ist beim letzten Mal genau passiert?",
        "impact": "Wie sehr behindert das Ihr Team bei der Arbeit?",
        "alternatives": "Womit vergleichen Sie uns?",
        "fix": "Was würde das für Sie lösen?",
        "confirm": "Wenn ich Sie richtig verstehe: {understanding}. Was habe ich falsch verstanden oder übersehen?",
        "call": "Wäre ein 15-minütiges Gespräch mit {owner_first_name} hilfreich?",
        "call_booking": "Wäre ein 15-minütiges Gespräch mit {owner_first_name} hilfreich? Einen Termin wählen Sie hier: {booking}",
        "ack": ["Danke, das hilft.", "Verstehe.", "Danke, das ist klar."],
        "ack_correction": "Danke für die Richtigstellung.",
        "close": "Danke, {first_name}. {owner_name} hat alles gelesen und meldet sich bis {date} mit den nächsten Schritten.",
        "close_call": "Danke, {first_name}. {owner_name} ruft Sie an und meldet sich bis {date} mit den nächsten Schritten.",
        "close_stop": "Natürlich, keine weiteren Fragen. {owner_name} hat Ihre Antworten und meldet sich bis {date}.",
        "close_short": "Danke, {first_name}, damit können wir arbeiten. {owner_name} meldet sich bis {date}.",
        "and_fix": "und helfen würde „{fix}“",
        "title": "Ihre {score}/10 für {product}",
        "intro": "{owner_name} liest jede Antwort hier selbst.",
        "answer_label": "Ihre Antwort",
        "send": "Senden",
        "sent_owner": "Gesendet. {owner_name} liest es.",
        "ended": "Dieses Gespräch ist beendet. Was Sie hier schreiben, erreicht trotzdem {owner_name}.",
        "taken_over": "{owner_name} antwortet Ihnen jetzt persönlich.",
        "expired": "Dieser Link ist abgelaufen. Schreiben Sie an {owner_email}; das erreicht {owner_name} direkt.",
        "too_long": "Bitte antworten Sie in weniger als {limit} Zeichen.",
        "empty": "Bitte schreiben Sie zuerst eine Antwort.",
        "too_many": "Zu viele Nachrichten. Bitte warten Sie eine Minute.",
        "you": "Sie",
        "offer": "Lieber kurz im Gespräch antworten (ein paar Fragen, zwei Minuten): {url}",
    },
    "fr": {
        "thanks_comment": "Merci pour votre {score} sur 10, {first_name}, et pour ce message : « {quote} ».",
        "thanks": "Merci pour votre {score} sur 10, {first_name}.",
        "open": "Quelle expérience a le plus compté dans votre note ?",
        "general_probe": "Que s'est-il passé la dernière fois ?",
        "impact": "À quel point cela gêne-t-il votre équipe ?",
        "alternatives": "À quoi nous comparez-vous ?",
        "fix": "Qu'est-ce qui réglerait cela pour vous ?",
        "confirm": "Si je vous ai bien compris : {understanding}. Qu'ai-je mal compris ou oublié ?",
        "call": "Un appel de 15 minutes avec {owner_first_name} vous serait-il utile ?",
        "call_booking": "Un appel de 15 minutes avec {owner_first_name} vous serait-il utile ? Choisissez un créneau ici : {booking}",
        "ack": ["Merci, cela m'aide.", "Je comprends.", "C'est clair, merci."],
        "ack_correction": "Merci de m'avoir corrigé.",
        "close": "Merci, {first_name}. {owner_name} a tout lu et reviendra vers vous d'ici le {date} avec la suite.",
        "close_call": "Merci, {first_name}. {owner_name} vous appellera et reviendra vers vous d'ici le {date} avec la suite.",
        "close_stop": "Bien sûr, plus de questions. {owner_name} a vos réponses et vous répondra d'ici le {date}.",
        "close_short": "Merci, {first_name}, c'est suffisant pour avancer. {owner_name} reviendra vers vous d'ici le {date}.",
        "and_fix": "et ce qui aiderait : « {fix} »",
        "title": "Votre {score}/10 pour {product}",
        "intro": "{owner_name} lit chaque réponse ici.",
        "answer_label": "Votre réponse",
        "send": "Envoyer",
        "sent_owner": "Envoyé. {owner_name} le lira.",
        "ended": "Cette conversation est terminée. Ce que vous écrivez ici parvient toujours à {owner_name}.",
        "taken_over": "{owner_name} vous répond maintenant personnellement.",
        "expired": "Ce lien a expiré. Écrivez à {owner_email} : votre message parviendra directement à {owner_name}.",
        "too_long": "Merci de répondre en moins de {limit} caractères.",
        "empty": "Merci d'écrire d'abord une réponse.",
        "too_many": "Trop de messages. Merci de patienter une minute.",
        "you": "Vous",
        "offer": "Vous pouvez aussi répondre dans une courte conversation (quelques questions, deux minutes) : {url}",
    },
    "es": {
        "thanks_comment": "Gracias por su {score} de 10, {first_name}, y por contarnos: «{quote}».",
        "thanks": "Gracias por su {score} de 10, {first_name}.",
        "open": "¿Qué experiencia influyó más en su puntuación?",
        "general_probe": "¿Qué pasó la última vez que le ocurrió?",
        "impact": "¿Cuánto le estorba esto a su equipo?",
        "alternatives": "¿Con qué nos está comparando?",
        "fix": "¿Qué lo resolvería para usted?",
        "confirm": "Si le he entendido bien: {understanding}. ¿Qué he entendido mal u omitido?",
        "call": "¿Le sería útil una llamada de 15 minutos con {owner_first_name}?",
        "call_booking": "¿Le sería útil una llamada de 15 minutos con {owner_first_name}? Puede elegir una hora aquí: {booking}",
        "ack": ["Gracias, eso ayuda.", "Entiendo.", "Queda claro, gracias."],
        "ack_correction": "Gracias por corregirme.",
        "close": "Gracias, {first_name}. {owner_name} lo tiene todo y le dirá los próximos pasos antes del {date}.",
        "close_call": "Gracias, {first_name}. {owner_name} le llamará y le dirá los próximos pasos antes del {date}.",
        "close_stop": "Por supuesto, no más preguntas. {owner_name} tiene lo que escribió y le responderá antes del {date}.",
        "close_short": "Gracias, {first_name}, con esto podemos avanzar. {owner_name} le responderá antes del {date}.",
        "and_fix": "y lo que ayudaría es «{fix}»",
        "title": "Su {score}/10 para {product}",
        "intro": "{owner_name} lee cada respuesta aquí.",
        "answer_label": "Su respuesta",
        "send": "Enviar",
        "sent_owner": "Enviado. {owner_name} lo leerá.",
        "ended": "Esta conversación ha terminado. Lo que escriba aquí seguirá llegando a {owner_name}.",
        "taken_over": "{owner_name} le responde ahora personalmente.",
        "expired": "Este enlace ha caducado. Escriba a {owner_email} y llegará directamente a {owner_name}.",
        "too_long": "Por favor, responda en menos de {limit} caracteres.",
        "empty": "Por favor, escriba primero una respuesta.",
        "too_many": "Demasiados mensajes. Espere un minuto, por favor.",
        "you": "Usted",
        "offer": "Si lo prefiere, responda en una breve conversación (unas preguntas, dos minutos): {url}",
    },
    "nl": {
        "thanks_comment": "Dank voor uw {score} van 10, {first_name}, en dat u ons schreef: ‘{quote}’.",
        "thanks": "Dank voor uw {score} van 10, {first_name}.",
        "open": "Welke ervaring bepaalde uw score het meest?",
        "general_probe": "Wat gebeurde er de laatste keer precies?",
        "impact": "Hoeveel hindert dit uw team?",
        "alternatives": "Waarmee vergelijkt u ons?",
        "fix": "Wat zou dit voor u oplossen?",
        "confirm": "Als ik u goed begrijp: {understanding}. Wat heb ik verkeerd begrepen of gemist?",
        "call": "Zou een gesprek van 15 minuten met {owner_first_name} helpen?",
        "call_booking": "Zou een gesprek van 15 minuten met {owner_first_name} helpen? Kies hier een tijd: {booking}",
        "ack": ["Dank u, dat helpt.", "Ik begrijp het.", "Helder, dank u."],
        "ack_correction": "Dank voor de correctie.",
        "close": "Dank u, {first_name}. {owner_name} heeft alles en laat u uiterlijk {date} weten wat de volgende stap is.",
        "close_call": "Dank u, {first_name}. {owner_name} belt u en laat u uiterlijk {date} weten wat de volgende stap is.",
        "close_stop": "Natuurlijk, geen vragen meer. {owner_name} heeft uw antwoorden en reageert uiterlijk {date}.",
        "close_short": "Dank u, {first_name}, hier kunnen we mee verder. {owner_name} reageert uiterlijk {date}.",
        "and_fix": "en wat zou helpen is ‘{fix}’",
        "title": "Uw {score}/10 voor {product}",
        "intro": "{owner_name} leest elk antwoord hier zelf.",
        "answer_label": "Uw antwoord",
        "send": "Versturen",
        "sent_owner": "Verstuurd. {owner_name} leest het.",
        "ended": "Dit gesprek is afgelopen. Wat u hier schrijft, komt nog steeds bij {owner_name}.",
        "taken_over": "{owner_name} antwoordt u nu persoonlijk.",
        "expired": "Deze link is verlopen. Schrijf naar {owner_email}; dat komt direct bij {owner_name}.",
        "too_long": "Houd uw antwoord onder {limit} tekens.",
        "empty": "Schrijf eerst een antwoord.",
        "too_many": "Te veel berichten. Wacht een minuut, alstublieft.",
        "you": "U",
        "offer": "Liever kort in een gesprek antwoorden (een paar vragen, twee minuten): {url}",
    },
    "pt": {
        "thanks_comment": "Obrigado pelo seu {score} de 10, {first_name}, e por nos dizer: “{quote}”.",
        "thanks": "Obrigado pelo seu {score} de 10, {first_name}.",
        "open": "Que experiência mais influenciou a sua nota?",
        "general_probe": "O que aconteceu da última vez?",
        "impact": "Quanto isto atrapalha a sua equipa?",
        "alternatives": "Com o que nos está a comparar?",
        "fix": "O que resolveria isto para si?",
        "confirm": "Se bem percebi: {understanding}. O que percebi mal ou deixei de fora?",
        "call": "Uma chamada de 15 minutos com {owner_first_name} seria útil?",
        "call_booking": "Uma chamada de 15 minutos com {owner_first_name} seria útil? Pode escolher um horário aqui: {booking}",
        "ack": ["Obrigado, isso ajuda.", "Percebo.", "Está claro, obrigado."],
        "ack_correction": "Obrigado pela correção.",
        "close": "Obrigado, {first_name}. {owner_name} tem tudo isto e diz-lhe os próximos passos até {date}.",
        "close_call": "Obrigado, {first_name}. {owner_name} vai ligar-lhe e dizer os próximos passos até {date}.",
        "close_stop": "Claro, sem mais perguntas. {owner_name} tem o que escreveu e responde até {date}.",
        "close_short": "Obrigado, {first_name}, já temos o suficiente. {owner_name} responde até {date}.",
        "and_fix": "e o que ajudaria é “{fix}”",
        "title": "A sua {score}/10 para {product}",
        "intro": "{owner_name} lê cada resposta aqui.",
        "answer_label": "A sua resposta",
        "send": "Enviar",
        "sent_owner": "Enviado. {owner_name} vai ler.",
        "ended": "Esta conversa terminou. O que escrever aqui continua a chegar a {owner_name}.",
        "taken_over": "{owner_name} está agora a responder-lhe pessoalmente.",
        "expired": "Este link expirou. Escreva para {owner_email} e chega diretamente a {owner_name}.",
        "too_long": "Por favor, responda em menos de {limit} caracteres.",
        "empty": "Por favor, escreva primeiro uma resposta.",
        "too_many": "Demasiadas mensagens. Aguarde um minuto, por favor.",
        "you": "Você",
        "offer": "Se preferir, responda numa curta conversa (algumas perguntas, dois minutos): {url}",
    },
}

LANGUAGES: Final = tuple(_TRANSLATIONS)

# The shipped themes' first probes (docs/domain.md §5) in the other languages.
PROBES: Final[dict[str, dict[str, str]]] = {
    "Which part felt complicated?": {
        "de": "Welcher Teil war kompliziert?",
        "fr": "Quelle partie vous a semblé compliquée ?",
        "es": "¿Qué parte le resultó complicada?",
        "nl": "Welk onderdeel voelde ingewikkeld?",
        "pt": "Que parte lhe pareceu complicada?",
    },
    "What would it let you do?": {
        "de": "Was könnten Sie damit tun?",
        "fr": "Que cela vous permettrait-il de faire ?",
        "es": "¿Qué le permitiría hacer?",
        "nl": "Wat zou het u mogelijk maken?",
        "pt": "O que lhe permitiria fazer?",
    },
    "What happened, and what did you expect?": {
        "de": "Was ist passiert, und was hatten Sie erwartet?",
        "fr": "Que s'est-il passé, et qu'attendiez-vous ?",
        "es": "¿Qué pasó y qué esperaba?",
        "nl": "Wat gebeurde er, en wat had u verwacht?",
        "pt": "O que aconteceu e o que esperava?",
    },
    "Where do you notice it being slow or down?": {
        "de": "Wo merken Sie, dass es langsam ist oder ausfällt?",
        "fr": "Où remarquez-vous la lenteur ou les pannes ?",
        "es": "¿Dónde nota que va lento o se cae?",
        "nl": "Waar merkt u dat het traag is of uitvalt?",
        "pt": "Onde nota que está lento ou em baixo?",
    },
    "What was your most recent interaction with support?": {
        "de": "Wie lief Ihr letzter Kontakt mit dem Support?",
        "fr": "Comment s'est passé votre dernier échange avec le support ?",
        "es": "¿Cómo fue su último contacto con soporte?",
        "nl": "Hoe verliep uw laatste contact met support?",
        "pt": "Como foi o seu último contacto com o suporte?",
    },
    "Where did getting started stall?": {
        "de": "Wo ist der Einstieg ins Stocken geraten?",
        "fr": "À quel moment la prise en main a-t-elle bloqué ?",
        "es": "¿Dónde se atascó la puesta en marcha?",
        "nl": "Waar liep het opstarten vast?",
        "pt": "Onde é que o arranque encravou?",
    },
    "Compared with what?": {
        "de": "Im Vergleich womit?",
        "fr": "Par rapport à quoi ?",
        "es": "¿Comparado con qué?",
        "nl": "Vergeleken met wat?",
        "pt": "Comparado com quê?",
    },
    "Which charge or invoice is wrong?": {
        "de": "Welche Abbuchung oder Rechnung stimmt nicht?",
        "fr": "Quel prélèvement ou quelle facture est erroné ?",
        "es": "¿Qué cargo o factura es incorrecto?",
        "nl": "Welke afschrijving of factuur klopt niet?",
        "pt": "Que cobrança ou fatura está errada?",
    },
    "Which tool are you connecting?": {
        "de": "Welches Tool verbinden Sie?",
        "fr": "Quel outil connectez-vous ?",
        "es": "¿Qué herramienta está conectando?",
        "nl": "Welke tool koppelt u?",
        "pt": "Que ferramenta está a ligar?",
    },
    "What were you looking for?": {
        "de": "Wonach haben Sie gesucht?",
        "fr": "Que cherchiez-vous ?",
        "es": "¿Qué estaba buscando?",
        "nl": "Wat zocht u?",
        "pt": "O que estava à procura?",
    },
}

MONTHS: Final = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
}


WEEKDAYS: Final = {
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "es": "lunes martes miércoles jueves viernes sábado domingo",
    "nl": "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag",
    "pt": "segunda-feira terça-feira quarta-feira quinta-feira sexta-feira sábado domingo",
}


def language(locale: str | None) -> str:
    """The language we have for a locale: exact, then its first part, then English."""
    code = (locale or "en").replace("_", "-").lower()
    base = code.split("-", 1)[0]
    return base if base in _TRANSLATIONS else "en"


def texts(locale: str | None) -> dict[str, object]:
    return {**EN, **_TRANSLATIONS[language(locale)]}


def text(locale: str | None, key: str, **values: str) -> str:
    found = texts(locale)[key]
    assert isinstance(found, str)
    return found.format(**values) if values else found


def probe(question: str, locale: str | None) -> str:
    """A theme's probe in the customer's language when it is a shipped one."""
    lang = language(locale)
    return PROBES.get(question, {}).get(lang, question) if lang != "en" else question


def day(value: object, locale: str | None) -> str:
    """A date as the customer's language writes it: "1 December" / "1. Dezember"."""
    from datetime import date

    assert isinstance(value, date)
    lang = language(locale)
    month = MONTHS[lang].split()[value.month - 1]
    if lang == "de":
        return f"{value.day}. {month}"
    if lang in ("es", "pt"):
        return f"{value.day} de {month}"
    return f"{value.day} {month}"


def weekday_day(value: object, locale: str | None) -> str:
    """A date with its weekday: "Thursday 3 December", "Donnerstag, 3. Dezember"."""
    from datetime import date

    assert isinstance(value, date)
    lang = language(locale)
    weekday = WEEKDAYS[lang].split()[value.weekday()]
    separator = ", " if lang in ("de", "pt") else " "
    return f"{weekday}{separator}{day(value, locale)}"
