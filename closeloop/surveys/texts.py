"""The words customers read in survey emails and pages, per language.

A person's `locale` picks the language ("pt-BR" falls back to "pt", then to
English). Survey wording an admin writes (question, intro, subject) is used as
written; these are the fixed parts around it.
"""

from __future__ import annotations

from typing import Final

EN: Final = {
    "lang_name": "English",
    "not_likely": "Not at all likely",
    "very_likely": "Extremely likely",
    "pick_score": "Click a number to answer:",
    "open_page": "Open the survey in your browser",
    "your_score": "Your answer",
    "comment_label": "What is the main reason for your score? (optional)",
    "send": "Send my answer",
    "update": "Update my answer",
    "thanks": "Thank you! Your answer is saved.",
    "pending": "You chose {score}. Press the button below to send it.",
    "too_many": "Too many answers from your network just now. Please try again in a minute.",
    "can_change": "You can change it until {date}.",
    "reminder": "Reminder",
    "footer": "You received this survey from {sender}.",
    "unsubscribe": "Unsubscribe from surveys",
    "unsubscribe_ask": "Stop receiving surveys at {email}?",
    "unsubscribed": "Done: {email} will not receive more surveys from us.",
    "expired": "This survey link has expired. Thank you for your time.",
    "damaged": "This link is damaged or incomplete. Please use the link from your email as it is.",
    "pick_required": "Please choose a number from 0 to 10.",
    "closed": "This survey is closed.",
}

_TRANSLATIONS: Final[dict[str, dict[str, str]]] = {
    "en": EN,
    "de": {
        "lang_name": "Deutsch",
        "not_likely": "Überhaupt nicht wahrscheinlich",
        "very_likely": "Äußerst wahrscheinlich",
        "pick_score": "Klicken Sie auf eine Zahl, um zu antworten:",
        "open_page": "Umfrage im Browser öffnen",
        "your_score": "Ihre Antwort",
        "comment_label": "Was ist der wichtigste Grund für Ihre Bewertung? (optional)",
        "send": "Antwort senden",
        "update": "Antwort ändern",
        "thanks": "Vielen Dank! Ihre Antwort ist gespeichert.",
        "pending": "Sie haben {score} gewählt. Senden Sie die Antwort mit der Schaltfläche unten.",
        "too_many": "Zu viele Antworten aus Ihrem Netz. Bitte in einer Minute erneut versuchen.",
        "can_change": "Sie können sie bis {date} ändern.",
        "reminder": "Erinnerung",
        "footer": "Diese Umfrage kommt von {sender}.",
        "unsubscribe": "Keine Umfragen mehr erhalten",
        "unsubscribe_ask": "Keine Umfragen mehr an {email} senden?",
        "unsubscribed": "Erledigt: {email} erhält keine Umfragen mehr von uns.",
        "expired": "Dieser Umfragelink ist abgelaufen. Danke für Ihre Zeit.",
        "damaged": "Dieser Link ist beschädigt. Bitte verwenden Sie den Link aus Ihrer E-Mail.",
        "pick_required": "Bitte wählen Sie eine Zahl von 0 bis 10.",
        "closed": "Diese Umfrage ist geschlossen.",
    },
    "fr": {
        "lang_name": "Français",
        "not_likely": "Pas du tout probable",
        "very_likely": "Extrêmement probable",
        "pick_score": "Cliquez sur un chiffre pour répondre :",
        "open_page": "Ouvrir l’enquête dans votre navigateur",
        "your_score": "Votre réponse",
        "comment_label": "Quelle est la raison principale de votre note ? (facultatif)",
        "send": "Envoyer ma réponse",
        "update": "Modifier ma réponse",
        "thanks": "Merci ! Votre réponse est enregistrée.",
        "pending": "Vous avez choisi {score}. Appuyez sur le bouton ci-dessous pour l’envoyer.",
        "too_many": "Trop de réponses depuis votre réseau. Veuillez réessayer dans une minute.",
        "can_change": "Vous pouvez la modifier jusqu’au {date}.",
        "reminder": "Rappel",
        "footer": "Vous avez reçu cette enquête de {sender}.",
        "unsubscribe": "Ne plus recevoir d’enquêtes",
        "unsubscribe_ask": "Ne plus envoyer d’enquêtes à {email} ?",
        "unsubscribed": "C’est fait : {email} ne recevra plus d’enquêtes de notre part.",
        "expired": "Ce lien d’enquête a expiré. Merci de votre temps.",
        "damaged": "Ce lien est endommagé. Utilisez le lien de votre e-mail tel quel.",
        "pick_required": "Veuillez choisir un chiffre de 0 à 10.",
        "closed": "Cette enquête est close.",
    },
    "es": {
        "lang_name": "Español",
        "not_likely": "Nada probable",
        "very_likely": "Muy probable",
        "pick_score": "Haga clic en un número para responder:",
        "open_page": "Abrir la encuesta en el navegador",
        "your_score": "Su respuesta",
        "comment_label": "¿Cuál es el motivo principal de su puntuación? (opcional)",
        "send": "Enviar mi respuesta",
        "update": "Cambiar mi respuesta",
        "thanks": "¡Gracias! Su respuesta se ha guardado.",
        "pending": "Ha elegido {score}. Pulse el botón de abajo para enviarla.",
        "too_many": "Demasiadas respuestas desde su red. Vuelva a intentarlo en un minuto.",
        "can_change": "Puede cambiarla hasta el {date}.",
        "reminder": "Recordatorio",
        "footer": "Ha recibido esta encuesta de {sender}.",
        "unsubscribe": "Dejar de recibir encuestas",
        "unsubscribe_ask": "¿Dejar de enviar encuestas a {email}?",
        "unsubscribed": "Hecho: {email} no recibirá más encuestas nuestras.",
        "expired": "Este enlace de encuesta ha caducado. Gracias por su tiempo.",
        "damaged": "Este enlace está dañado. Use el enlace de su correo tal cual.",
        "pick_required": "Elija un número del 0 al 10.",
        "closed": "Esta encuesta está cerrada.",
    },
    "nl": {
        "lang_name": "Nederlands",
        "not_likely": "Helemaal niet waarschijnlijk",
        "very_likely": "Zeer waarschijnlijk",
        "pick_score": "Klik op een cijfer om te antwoorden:",
        "open_page": "Open de enquête in uw browser",
        "your_score": "Uw antwoord",
        "comment_label": "Wat is de belangrijkste reden voor uw score? (optioneel)",
        "send": "Antwoord versturen",
        "update": "Antwoord wijzigen",
        "thanks": "Dank u! Uw antwoord is opgeslagen.",
        "pending": "U koos {score}. Druk op de knop hieronder om het te versturen.",
        "too_many": "Te veel antwoorden vanaf uw netwerk. Probeer het over een minuut opnieuw.",
        "can_change": "U kunt het wijzigen tot {date}.",
        "reminder": "Herinnering",
        "footer": "U ontving deze enquête van {sender}.",
        "unsubscribe": "Geen enquêtes meer ontvangen",
        "unsubscribe_ask": "Geen enquêtes meer sturen naar {email}?",
        "unsubscribed": "Klaar: {email} ontvangt geen enquêtes meer van ons.",
        "expired": "Deze enquêtelink is verlopen. Bedankt voor uw tijd.",
        "damaged": "Deze link is beschadigd. Gebruik de link uit uw e-mail zoals hij is.",
        "pick_required": "Kies een cijfer van 0 tot 10.",
        "closed": "Deze enquête is gesloten.",
    },
    "pt": {
        "lang_name": "Português",
        "not_likely": "Nada provável",
        "very_likely": "Extremamente provável",
        "pick_score": "Clique num número para responder:",
        "open_page": "Abrir a pesquisa no navegador",
        "your_score": "A sua resposta",
        "comment_label": "Qual é o principal motivo da sua nota? (opcional)",
        "send": "Enviar a minha resposta",
        "update": "Alterar a minha resposta",
        "thanks": "Obrigado! A sua resposta foi guardada.",
        "pending": "Escolheu {score}. Carregue no botão abaixo para a enviar.",
        "too_many": "Demasiadas respostas da sua rede. Tente novamente dentro de um minuto.",
        "can_change": "Pode alterá-la até {date}.",
        "reminder": "Lembrete",
        "footer": "Recebeu esta pesquisa de {sender}.",
        "unsubscribe": "Deixar de receber pesquisas",
        "unsubscribe_ask": "Deixar de enviar pesquisas para {email}?",
        "unsubscribed": "Feito: {email} não receberá mais pesquisas nossas.",
        "expired": "Este link de pesquisa expirou. Obrigado pelo seu tempo.",
        "damaged": "Este link está danificado. Use o link do seu e-mail tal como está.",
        "pick_required": "Escolha um número de 0 a 10.",
        "closed": "Esta pesquisa está encerrada.",
    },
}

LANGUAGES: Final = tuple(_TRANSLATIONS)


def language(locale: str | None) -> str:
    """The language we have for a locale: exact, then its first part, then English."""
    code = (locale or "en").replace("_", "-").lower()
    if code in _TRANSLATIONS:
        return code
    base = code.split("-", 1)[0]
    return base if base in _TRANSLATIONS else "en"


def texts(locale: str | None) -> dict[str, str]:
    """Every fixed string in the person's language (missing ones in English)."""
    return {**EN, **_TRANSLATIONS[language(locale)]}
