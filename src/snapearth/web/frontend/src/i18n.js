// Interface strings in English and French. The query itself may be in any of the five languages.
const STRINGS = {
  en: {
    title: "SnapEarth",
    tagline: "Ask the Sentinel archive in plain words",
    placeholder: "e.g. floods near Valencia in October 2024",
    search: "Search",
    understood: "Understood",
    place: "Place",
    period: "Period",
    clouds: "Clouds",
    sensor: "Sensor",
    theme: "Theme",
    compare: "Compare",
    beforeAfter: "before / after",
    anySensor: "Any sensor",
    radar: "Radar (Sentinel-1)",
    optical: "Optical (Sentinel-2)",
    anyTheme: "Any theme",
    from: "From",
    to: "To",
    maxClouds: "Max clouds",
    results: "Results",
    noResults: "Nothing matches this search. Try a wider period, more clouds or another place.",
    loading: "Searching…",
    serverError: "The server could not answer",
    timeline: "Results per month — drag to narrow the period",
    rendering: "Rendering",
    truecolor: "True colour",
    falsecolor: "False colour (NIR)",
    ndvi: "Vegetation (NDVI)",
    water: "Water (NDWI)",
    burn: "Burn (NBR)",
    snow: "Snow (NDSI)",
    sar: "Radar (VV/VH)",
    details: "Details",
    metadata: "Metadata",
    signature: "Signature",
    assets: "Assets",
    download: "download",
    moreLikeThis: "More like this",
    similar: "Similar images",
    back: "Back to results",
    compareWith: "Compare with…",
    pickSecond: "Pick a second image in the list",
    swipe: "Swipe",
    close: "Close",
    score: "score",
    cloudCover: "cloud cover",
    events: "Events",
    filters: "Filters",
    apply: "Apply",
    reset: "Reset",
    remove: "remove",
    edit: "edit",
    language: "Français",
    none: "none",
    hl_water: "water",
    hl_snow: "snow",
    hl_burn: "burnt",
    hl_ndvi: "vegetation",
  },
  fr: {
    title: "SnapEarth",
    tagline: "Interrogez l’archive Sentinel en langage courant",
    placeholder: "ex. inondations près de Valence en octobre 2024",
    search: "Rechercher",
    understood: "Compris",
    place: "Lieu",
    period: "Période",
    clouds: "Nuages",
    sensor: "Capteur",
    theme: "Thème",
    compare: "Comparer",
    beforeAfter: "avant / après",
    anySensor: "Tout capteur",
    radar: "Radar (Sentinel-1)",
    optical: "Optique (Sentinel-2)",
    anyTheme: "Tout thème",
    from: "Du",
    to: "Au",
    maxClouds: "Nuages max",
    results: "Résultats",
    noResults: "Aucune image ne correspond. Élargissez la période, les nuages ou le lieu.",
    loading: "Recherche…",
    serverError: "Le serveur n’a pas pu répondre",
    timeline: "Résultats par mois — glissez pour restreindre la période",
    rendering: "Rendu",
    truecolor: "Couleurs naturelles",
    falsecolor: "Fausses couleurs (PIR)",
    ndvi: "Végétation (NDVI)",
    water: "Eau (NDWI)",
    burn: "Brûlis (NBR)",
    snow: "Neige (NDSI)",
    sar: "Radar (VV/VH)",
    details: "Détails",
    metadata: "Métadonnées",
    signature: "Signature",
    assets: "Fichiers",
    download: "télécharger",
    moreLikeThis: "Images similaires",
    similar: "Images similaires",
    back: "Retour aux résultats",
    compareWith: "Comparer avec…",
    pickSecond: "Choisissez une deuxième image dans la liste",
    swipe: "Balayage",
    close: "Fermer",
    score: "score",
    cloudCover: "couverture nuageuse",
    events: "Événements",
    filters: "Filtres",
    apply: "Appliquer",
    reset: "Réinitialiser",
    remove: "retirer",
    edit: "modifier",
    language: "English",
    none: "aucun",
    hl_water: "eau",
    hl_snow: "neige",
    hl_burn: "brûlé",
    hl_ndvi: "végétation",
  },
};

export const THEMES = ["flood", "wildfire", "snow", "drought", "crops", "deforestation", "water", "urban"];
const THEME_NAMES = {
  en: { flood: "flood", wildfire: "wildfire", snow: "snow", drought: "drought", crops: "crops",
        deforestation: "deforestation", water: "water", urban: "urban", harvest: "harvest" },
  fr: { flood: "inondation", wildfire: "incendie", snow: "neige", drought: "sécheresse", crops: "cultures",
        deforestation: "déforestation", water: "eau", urban: "urbain", harvest: "récolte" },
};

let lang = "en";

export function setLanguage(value) {
  lang = STRINGS[value] ? value : "en";
  document.documentElement.lang = lang;
}

export function language() {
  return lang;
}

export function t(key) {
  return STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
}

export function themeName(theme) {
  return THEME_NAMES[lang][theme] ?? theme;
}

export function formatDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleDateString(lang === "fr" ? "fr-FR" : "en-GB", { year: "numeric", month: "short", day: "numeric" });
}
