// English and French. The choice is remembered in localStorage; amounts are formatted with
// Intl in the chosen language (`15 000 XAF` in French), dates in the browser's time zone.

const STORAGE_KEY = "crier.locale";

const en = {
  "app.skip": "Skip to content",
  "app.workspace": "Workspace",
  "app.language": "Language",
  "app.logout": "Log out",
  "app.loading": "Loading…",
  "app.dismiss": "Dismiss",
  "nav.overview": "Overview",
  "nav.messages": "Messages",
  "nav.keys": "API keys",
  "error.network": "The server could not be reached. Check your connection and try again.",
  "error.generic": "Something went wrong.",
  "error.request_id": "Request id: {id}",
  "error.fields": "Some fields need your attention.",
  "setup.title": "Set up crier",
  "setup.lead": "This server has no account yet. Create the first one: it administers the instance and owns its first workspace.",
  "setup.name": "Your name",
  "setup.email": "Email",
  "setup.password": "Password",
  "setup.password_hint": "At least 12 characters.",
  "setup.workspace_name": "Workspace name",
  "setup.submit": "Create account",
  "login.title": "Log in",
  "login.email": "Email",
  "login.password": "Password",
  "login.submit": "Log in",
  "login.failed": "Wrong email or password.",
  "overview.title": "Overview",
  "overview.balance": "Wallet balance",
  "overview.plan": "Plan",
  "overview.plan_until": "until {date}",
  "overview.plan_none": "No paid plan",
  "overview.quotas": "Included quotas",
  "overview.quota_sms": "SMS this month",
  "overview.quota_email": "Email today",
  "overview.quota_line": "{used} of {included} used",
  "overview.quota_period": "{start} – {end}",
  "overview.sender": "SMS sender",
  "overview.chart": "Messages over the last 14 days",
  "overview.chart_empty": "No messages in the last 14 days.",
  "overview.recent": "Recent messages",
  "overview.recent_empty": "No messages yet.",
  "overview.all_messages": "All messages",
  "checklist.title": "Getting started",
  "checklist.credit": "Credit your wallet or buy a plan",
  "checklist.key": "Create an API key",
  "checklist.send": "Send a test message",
  "checklist.sender": "Request a sender ID",
  "checklist.contacts": "Import your contacts",
  "checklist.done": "Done",
  "checklist.todo": "To do",
  "chart.sms": "SMS",
  "chart.email": "Email",
  "messages.title": "Messages",
  "messages.filters": "Filters",
  "messages.status": "Status",
  "messages.channel": "Channel",
  "messages.any": "Any",
  "messages.from": "Created from",
  "messages.to_date": "Created before",
  "messages.apply": "Apply",
  "messages.empty": "No messages match.",
  "messages.more": "Show more",
  "messages.col_created": "Created",
  "messages.col_to": "To",
  "messages.col_channel": "Channel",
  "messages.col_status": "Status",
  "messages.col_charge": "Charge",
  "messages.send_title": "Send a test",
  "messages.send_to": "Phone number",
  "messages.send_text": "Message",
  "messages.send_submit": "Send",
  "messages.send_at": "Send later (optional)",
  "messages.send_at_hint": "Your local time. Leave empty to send now.",
  "messages.sent": "Message {id} created.",
  "counter.characters": "{n} characters",
  "counter.segments": "{n} segments",
  "counter.segment": "1 segment",
  "counter.price": "Price: {price}",
  "counter.unaffordable": "The wallet cannot pay for it.",
  "counter.ucs2_because": "These characters force UCS-2:",
  "counter.waiting": "Type a message to see its length and price.",
  "message.title": "Message",
  "message.field_id": "Id",
  "message.back": "Back to messages",
  "message.cancel": "Cancel this scheduled message",
  "message.cancelled": "The message was cancelled and its charge refunded.",
  "message.timeline": "Delivery attempts",
  "message.no_attempts": "No delivery attempt yet.",
  "message.field_status": "Status",
  "message.field_to": "To",
  "message.field_sender": "Sender",
  "message.field_text": "Text",
  "message.field_subject": "Subject",
  "message.field_encoding": "Encoding",
  "message.field_charge": "Charge",
  "message.field_created": "Created",
  "message.field_scheduled": "Scheduled for",
  "message.field_error": "Error",
  "message.attempt": "Attempt {n} via {provider}",
  "message.outcome.accepted": "accepted",
  "message.outcome.retryable_error": "temporary error",
  "message.outcome.final_error": "final error",
  "message.created_event": "Created",
  "message.sent_event": "Sent",
  "message.delivered_event": "Delivered",
  "message.failed_event": "Failed",
  "message.cancelled_event": "Cancelled",
  "keys.title": "API keys",
  "keys.name": "Name",
  "keys.mode": "Mode",
  "keys.scopes": "Scopes",
  "keys.create": "Create key",
  "keys.secret": "Your new key. Copy it now: it is shown only once.",
  "keys.copy": "Copy",
  "keys.copied": "Copied",
  "keys.revoke": "Revoke",
  "keys.revoke_confirm": "Revoke {name}? Requests with it will fail at once.",
  "keys.revoked": "revoked",
  "keys.empty": "No API keys yet.",
  "keys.col_prefix": "Key",
  "keys.col_created": "Created",
  "keys.col_last_used": "Last used",
  "keys.never": "never",
  "keys.forbidden": "Only owners and admins manage API keys.",
  "status.scheduled": "scheduled",
  "status.queued": "queued",
  "status.sending": "sending",
  "status.sent": "sent",
  "status.delivered": "delivered",
  "status.failed": "failed",
  "status.cancelled": "cancelled",
  "mode.live": "live",
  "mode.test": "test",
  "channel.sms": "SMS",
  "channel.email": "Email",
  "notfound.title": "Page not found",
  "notfound.back": "Go to the overview",
};

const fr = {
  "app.skip": "Aller au contenu",
  "app.workspace": "Espace de travail",
  "app.language": "Langue",
  "app.logout": "Se déconnecter",
  "app.loading": "Chargement…",
  "app.dismiss": "Fermer",
  "nav.overview": "Vue d’ensemble",
  "nav.messages": "Messages",
  "nav.keys": "Clés d’API",
  "error.network": "Le serveur est injoignable. Vérifiez votre connexion et réessayez.",
  "error.generic": "Une erreur s’est produite.",
  "error.request_id": "Identifiant de requête : {id}",
  "error.fields": "Certains champs sont à corriger.",
  "setup.title": "Installer crier",
  "setup.lead": "Ce serveur n’a encore aucun compte. Créez le premier : il administre l’instance et possède son premier espace de travail.",
  "setup.name": "Votre nom",
  "setup.email": "E-mail",
  "setup.password": "Mot de passe",
  "setup.password_hint": "Au moins 12 caractères.",
  "setup.workspace_name": "Nom de l’espace de travail",
  "setup.submit": "Créer le compte",
  "login.title": "Connexion",
  "login.email": "E-mail",
  "login.password": "Mot de passe",
  "login.submit": "Se connecter",
  "login.failed": "E-mail ou mot de passe incorrect.",
  "overview.title": "Vue d’ensemble",
  "overview.balance": "Solde du portefeuille",
  "overview.plan": "Forfait",
  "overview.plan_until": "jusqu’au {date}",
  "overview.plan_none": "Aucun forfait payant",
  "overview.quotas": "Quotas inclus",
  "overview.quota_sms": "SMS ce mois-ci",
  "overview.quota_email": "E-mails aujourd’hui",
  "overview.quota_line": "{used} sur {included} utilisés",
  "overview.quota_period": "{start} – {end}",
  "overview.sender": "Expéditeur SMS",
  "overview.chart": "Messages des 14 derniers jours",
  "overview.chart_empty": "Aucun message ces 14 derniers jours.",
  "overview.recent": "Messages récents",
  "overview.recent_empty": "Aucun message pour l’instant.",
  "overview.all_messages": "Tous les messages",
  "checklist.title": "Premiers pas",
  "checklist.credit": "Créditer le portefeuille ou acheter un forfait",
  "checklist.key": "Créer une clé d’API",
  "checklist.send": "Envoyer un message de test",
  "checklist.sender": "Demander un identifiant d’expéditeur",
  "checklist.contacts": "Importer vos contacts",
  "checklist.done": "Fait",
  "checklist.todo": "À faire",
  "chart.sms": "SMS",
  "chart.email": "E-mail",
  "messages.title": "Messages",
  "messages.filters": "Filtres",
  "messages.status": "Statut",
  "messages.channel": "Canal",
  "messages.any": "Tous",
  "messages.from": "Créés à partir du",
  "messages.to_date": "Créés avant le",
  "messages.apply": "Appliquer",
  "messages.empty": "Aucun message ne correspond.",
  "messages.more": "Afficher plus",
  "messages.col_created": "Créé",
  "messages.col_to": "Destinataire",
  "messages.col_channel": "Canal",
  "messages.col_status": "Statut",
  "messages.col_charge": "Coût",
  "messages.send_title": "Envoyer un test",
  "messages.send_to": "Numéro de téléphone",
  "messages.send_text": "Message",
  "messages.send_submit": "Envoyer",
  "messages.send_at": "Envoyer plus tard (facultatif)",
  "messages.send_at_hint": "Votre heure locale. Laissez vide pour envoyer tout de suite.",
  "messages.sent": "Message {id} créé.",
  "counter.characters": "{n} caractères",
  "counter.segments": "{n} segments",
  "counter.segment": "1 segment",
  "counter.price": "Prix : {price}",
  "counter.unaffordable": "Le portefeuille ne peut pas le payer.",
  "counter.ucs2_because": "Ces caractères imposent l’UCS-2 :",
  "counter.waiting": "Saisissez un message pour voir sa longueur et son prix.",
  "message.title": "Message",
  "message.field_id": "Identifiant",
  "message.back": "Retour aux messages",
  "message.cancel": "Annuler ce message programmé",
  "message.cancelled": "Le message a été annulé et son coût remboursé.",
  "message.timeline": "Tentatives de remise",
  "message.no_attempts": "Aucune tentative de remise pour l’instant.",
  "message.field_status": "Statut",
  "message.field_to": "Destinataire",
  "message.field_sender": "Expéditeur",
  "message.field_text": "Texte",
  "message.field_subject": "Objet",
  "message.field_encoding": "Encodage",
  "message.field_charge": "Coût",
  "message.field_created": "Créé le",
  "message.field_scheduled": "Programmé pour",
  "message.field_error": "Erreur",
  "message.attempt": "Tentative {n} via {provider}",
  "message.outcome.accepted": "acceptée",
  "message.outcome.retryable_error": "erreur temporaire",
  "message.outcome.final_error": "erreur définitive",
  "message.created_event": "Créé",
  "message.sent_event": "Envoyé",
  "message.delivered_event": "Remis",
  "message.failed_event": "Échec",
  "message.cancelled_event": "Annulé",
  "keys.title": "Clés d’API",
  "keys.name": "Nom",
  "keys.mode": "Mode",
  "keys.scopes": "Droits",
  "keys.create": "Créer la clé",
  "keys.secret": "Votre nouvelle clé. Copiez-la maintenant : elle n’est affichée qu’une fois.",
  "keys.copy": "Copier",
  "keys.copied": "Copiée",
  "keys.revoke": "Révoquer",
  "keys.revoke_confirm": "Révoquer {name} ? Les requêtes qui l’utilisent échoueront aussitôt.",
  "keys.revoked": "révoquée",
  "keys.empty": "Aucune clé d’API pour l’instant.",
  "keys.col_prefix": "Clé",
  "keys.col_created": "Créée",
  "keys.col_last_used": "Dernière utilisation",
  "keys.never": "jamais",
  "keys.forbidden": "Seuls les propriétaires et administrateurs gèrent les clés d’API.",
  "status.scheduled": "programmé",
  "status.queued": "en file",
  "status.sending": "en cours d’envoi",
  "status.sent": "envoyé",
  "status.delivered": "remis",
  "status.failed": "échec",
  "status.cancelled": "annulé",
  "mode.live": "réel",
  "mode.test": "test",
  "channel.sms": "SMS",
  "channel.email": "E-mail",
  "notfound.title": "Page introuvable",
  "notfound.back": "Aller à la vue d’ensemble",
};

export const DICTIONARIES = { en, fr };

function initialLocale() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored && DICTIONARIES[stored]) return stored;
  return (navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en";
}

let locale = initialLocale();

export function getLocale() {
  return locale;
}

export function setLocale(next) {
  if (!DICTIONARIES[next]) return;
  locale = next;
  localStorage.setItem(STORAGE_KEY, next);
  document.documentElement.lang = next;
}

/// The text for `key` in the current language, with `{name}` replaced from `vars`.
export function t(key, vars = {}) {
  const text = DICTIONARIES[locale][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/// The number of minor units in one major unit of `currency` (XAF: 0 decimals, EUR: 2).
function exponent(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits;
  } catch (err) {
    return 0;
  }
}

/// `{amount_minor: 15000, currency: "XAF"}` → `15 000 XAF` (fr) or `XAF 15,000` (en).
export function money(value) {
  if (!value) return "";
  const digits = exponent(value.currency);
  const major = value.amount_minor / 10 ** digits;
  try {
    return new Intl.NumberFormat(locale, {
      style: "currency",
      currency: value.currency,
      currencyDisplay: "code",
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(major);
  } catch (err) {
    return `${major} ${value.currency}`;
  }
}

export function number(value) {
  return new Intl.NumberFormat(locale).format(value);
}

/// An RFC 3339 instant in the browser's time zone.
export function dateTime(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}

export function date(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium" }).format(new Date(iso));
}

/// A UTC day (`2026-12-03`) as a short label, without moving it across time zones.
export function day(text) {
  return new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", timeZone: "UTC" }).format(
    new Date(text + "T00:00:00Z"),
  );
}

/// Sets the text of every `[data-i18n]` element of the static shell.
export function translateShell(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
}
