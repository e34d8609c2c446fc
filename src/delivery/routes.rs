//! SMS routing: which provider chain a number's messages take.
//!
//! `--sms-routes` lists routes separated by `;`, each `MATCHES=PROVIDERS`: MATCHES a
//! comma-separated list of E.164 prefixes (`+23767`) and countries (`CM`, ISO 3166 alpha-2),
//! PROVIDERS the chain in fallback order (the names `--sms-providers` takes). A number takes the
//! route of its longest matching prefix; else the route naming its country; else the default
//! chain, `--sms-providers`. A prefix or country appears in one route only.
//!
//! The choice is made when a message is created and stored on it as `MATCHED=PROVIDERS`
//! (`+23767=avlytext,mboasms`, `CM=lmt`, `default=twilio`; `test=log` for a test-mode message,
//! which only ever goes to `log`): the message and the estimate show it, and the dispatcher sends
//! by it while the configuration still has that route.

use crate::delivery::settings::SmsProviderName;

/// What a route matches a number by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// An E.164 prefix with its `+` (`+23767`).
    Prefix(String),
    /// An ISO 3166 alpha-2 country, upper-case (`CM`).
    Country(String),
}

impl RouteMatch {
    pub fn as_str(&self) -> &str {
        match self {
            RouteMatch::Prefix(text) | RouteMatch::Country(text) => text,
        }
    }
}

/// One route: the numbers it takes and its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsRoute {
    pub matches: Vec<RouteMatch>,
    pub providers: Vec<SmsProviderName>,
}

/// The route chosen for a number: what matched it (`+23767`, `CM`, `default`) and the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen<'a> {
    pub matched: &'a str,
    pub providers: &'a [SmsProviderName],
}

/// What a message stores when no route matched.
pub const DEFAULT_ROUTE: &str = "default";
/// What a test-mode SMS stores: it goes to `log` only, whatever the routes say.
pub const TEST_ROUTE: &str = "test=log";
/// What a live message of a workspace with its own provider accounts stores, before the
/// accounts' ids: `accounts=pac_…,pac_…` (`delivery::accounts`).
pub const ACCOUNTS_ROUTE: &str = "accounts";

/// The provider accounts a stored route names, in order; `None` for any other route.
pub fn account_ids(stored: &str) -> Option<Vec<crate::ids::ProviderAccountId>> {
    let (matched, ids) = stored.split_once('=')?;
    (matched == ACCOUNTS_ROUTE).then(|| {
        ids.split(',')
            .filter_map(crate::ids::ProviderAccountId::parse)
            .collect()
    })
}

impl Chosen<'_> {
    /// The text stored on the message: `MATCHED=PROVIDER,PROVIDER`.
    pub fn stored(&self) -> String {
        let names: Vec<&str> = self.providers.iter().map(|name| name.as_str()).collect();
        format!("{}={}", self.matched, names.join(","))
    }
}

/// The route of `to` (E.164) among `routes`, else the `default` chain.
pub fn choose<'a>(routes: &'a [SmsRoute], default: &'a [SmsProviderName], to: &str) -> Chosen<'a> {
    let mut best: Option<(&'a str, &'a SmsRoute)> = None;
    let mut has_countries = false;
    for route in routes {
        for matcher in &route.matches {
            match matcher {
                RouteMatch::Prefix(prefix) => {
                    let longer = best.is_none_or(|(found, _)| prefix.len() > found.len());
                    if to.starts_with(prefix.as_str()) && longer {
                        best = Some((prefix, route));
                    }
                }
                RouteMatch::Country(_) => has_countries = true,
            }
        }
    }
    if let Some((matched, route)) = best {
        return Chosen {
            matched,
            providers: &route.providers,
        };
    }
    if has_countries && let Some(country) = country_of(to) {
        for route in routes {
            for matcher in &route.matches {
                if let RouteMatch::Country(code) = matcher
                    && *code == country
                {
                    return Chosen {
                        matched: code,
                        providers: &route.providers,
                    };
                }
            }
        }
    }
    Chosen {
        matched: DEFAULT_ROUTE,
        providers: default,
    }
}

/// The country of an E.164 number, by libphonenumber's metadata.
fn country_of(to: &str) -> Option<String> {
    let number = phonenumber::parse(None, to).ok()?;
    number
        .country()
        .id()
        .map(|id| AsRef::<str>::as_ref(&id).to_owned())
}

/// Parses `--sms-routes` (empty: no routes). Provider names are checked here; whether they are
/// configured is checked with the other settings.
pub fn parse_routes(text: &str) -> Result<Vec<SmsRoute>, String> {
    let mut routes: Vec<SmsRoute> = Vec::new();
    for part in text
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (matches, providers) = part
            .split_once('=')
            .ok_or_else(|| format!("route {part:?} is not MATCHES=PROVIDERS"))?;
        let mut parsed = Vec::new();
        for word in matches.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let matcher = parse_match(word)?;
            let taken = routes
                .iter()
                .flat_map(|route| &route.matches)
                .chain(&parsed)
                .any(|other| *other == matcher);
            if taken {
                return Err(format!("{word} is routed twice"));
            }
            parsed.push(matcher);
        }
        if parsed.is_empty() {
            return Err(format!("route {part:?} matches no prefix or country"));
        }
        let providers =
            super::settings::provider_list(providers, SmsProviderName::parse, |n| n.as_str())
                .map_err(|problem| format!("route {part:?}: {problem}"))?;
        routes.push(SmsRoute {
            matches: parsed,
            providers,
        });
    }
    Ok(routes)
}

fn parse_match(word: &str) -> Result<RouteMatch, String> {
    if let Some(digits) = word.strip_prefix('+') {
        if (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(RouteMatch::Prefix(word.to_owned()));
        }
        return Err(format!(
            "{word:?} is not an E.164 prefix (a + and 1 to 15 digits)"
        ));
    }
    let upper = word.to_ascii_uppercase();
    if upper.len() == 2 && upper.parse::<phonenumber::country::Id>().is_ok() {
        return Ok(RouteMatch::Country(upper));
    }
    Err(format!(
        "{word:?} is neither an E.164 prefix (+23767) nor a country code (CM)"
    ))
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_accounts_route_names_its_accounts_in_order() {
        let ids = account_ids("accounts=pac_2,pac_1").unwrap();
        let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
        assert_eq!(ids, ["pac_2", "pac_1"]);
        assert_eq!(account_ids("default=twilio"), None);
        assert_eq!(account_ids(TEST_ROUTE), None);
        assert_eq!(account_ids("accounts").map(|ids| ids.len()), None);
    }

    use super::*;
    use SmsProviderName::{AvlyText, Lmt, Log, MboaSms, Twilio};

    /// The README's example: Cameroonian MTN (67x, 650–654, 680–683) and Orange (69x, 655–659,
    /// 686–689) mobiles to the local aggregators; everything else to the default chain.
    const CAMEROON: &str = "+23767,+23769,+23765,+237680,+237681,+237682,+237683,+237686,\
                            +237687,+237688,+237689=avlytext,mboasms";

    #[test]
    fn the_cameroon_example_routes_mtn_and_orange_to_the_local_aggregators() {
        let routes = parse_routes(CAMEROON).unwrap();
        let default = [Twilio];
        let local = [AvlyText, MboaSms];
        for (to, matched, providers) in [
            ("+237670000000", "+23767", &local[..]),
            ("+237677123456", "+23767", &local),
            ("+237650000000", "+23765", &local),
            ("+237654999999", "+23765", &local),
            ("+237655000000", "+23765", &local),
            ("+237659000000", "+23765", &local),
            ("+237680000000", "+237680", &local),
            ("+237683000000", "+237683", &local),
            ("+237686000000", "+237686", &local),
            ("+237689000000", "+237689", &local),
            ("+237690000000", "+23769", &local),
            ("+237699999999", "+23769", &local),
            // 684 and 685 are neither MTN's nor Orange's; a fixed line; another country.
            ("+237684000000", "default", &default),
            ("+237685000000", "default", &default),
            ("+237222000000", "default", &default),
            ("+33612345678", "default", &default),
        ] {
            let chosen = choose(&routes, &default, to);
            assert_eq!(
                (chosen.matched, chosen.providers),
                (matched, providers),
                "{to}"
            );
        }
        assert_eq!(
            choose(&routes, &default, "+237677123456").stored(),
            "+23767=avlytext,mboasms"
        );
        assert_eq!(
            choose(&routes, &default, "+14155550100").stored(),
            "default=twilio"
        );
    }

    #[test]
    fn the_longest_prefix_wins_then_the_country_then_the_default() {
        let routes = parse_routes("cm = lmt; +237 = mboasms; +23767 = avlytext, lmt").unwrap();
        let default = [Log];
        let chosen = |to| choose(&routes, &default, to);
        assert_eq!(chosen("+237677000000").matched, "+23767");
        assert_eq!(chosen("+237677000000").providers, &[AvlyText, Lmt]);
        assert_eq!(chosen("+237690000000").matched, "+237");
        // The order of the routes does not matter, only the prefix's length.
        let reversed = parse_routes("+23767=avlytext,lmt;+237=mboasms").unwrap();
        assert_eq!(
            choose(&reversed, &default, "+237677000000").matched,
            "+23767"
        );

        let by_country = parse_routes("CM=lmt; +1=twilio").unwrap();
        assert_eq!(
            choose(&by_country, &default, "+237690000000"),
            Chosen {
                matched: "CM",
                providers: &[Lmt]
            }
        );
        assert_eq!(choose(&by_country, &default, "+14155550100").matched, "+1");
        assert_eq!(
            choose(&by_country, &default, "+33612345678"),
            Chosen {
                matched: "default",
                providers: &[Log]
            }
        );
        assert_eq!(choose(&[], &default, "+237690000000").matched, "default");
    }

    #[test]
    fn bad_routes_are_refused_with_a_reason() {
        assert_eq!(parse_routes("").unwrap(), vec![]);
        assert_eq!(parse_routes(" ; ").unwrap(), vec![]);
        for (text, reason) in [
            ("+237", "route \"+237\" is not MATCHES=PROVIDERS"),
            ("=lmt", "route \"=lmt\" matches no prefix or country"),
            ("+237=", "route \"+237=\": must name at least one provider"),
            (
                "+237=lmt,nexmo",
                "route \"+237=lmt,nexmo\": \"nexmo\" is not a provider name",
            ),
            (
                "+237=lmt,lmt",
                "route \"+237=lmt,lmt\": lmt is listed twice",
            ),
            (
                "237=lmt",
                "\"237\" is neither an E.164 prefix (+23767) nor a country code (CM)",
            ),
            (
                "+23a=lmt",
                "\"+23a\" is not an E.164 prefix (a + and 1 to 15 digits)",
            ),
            (
                "+=lmt",
                "\"+\" is not an E.164 prefix (a + and 1 to 15 digits)",
            ),
            (
                "XX=lmt",
                "\"XX\" is neither an E.164 prefix (+23767) nor a country code (CM)",
            ),
            ("+237=lmt;+237=log", "+237 is routed twice"),
            ("cm,CM=lmt", "CM is routed twice"),
        ] {
            assert_eq!(parse_routes(text).unwrap_err(), reason, "{text}");
        }
    }

    #[test]
    fn stored_routes_split_back() {
        let split = |stored| {
            crate::messages::view::route_view(stored).map(|route| (route.matched, route.providers))
        };
        assert_eq!(
            split("+23767=avlytext,mboasms"),
            Some(("+23767", vec!["avlytext", "mboasms"]))
        );
        assert_eq!(split(TEST_ROUTE), Some(("test", vec!["log"])));
        assert_eq!(split("nonsense"), None);
    }
}
