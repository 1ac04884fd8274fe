//! The options inside `#[queue_command(...)]`.

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, ExprUnary, Ident, Lit, LitInt, LitStr, Meta, Token, UnOp};

use crate::Errors;

/// The option names, in the order the docs list them.
const KNOWN: [&str; 10] = [
    "name",
    "queue",
    "retries",
    "backoff",
    "timeout",
    "key",
    "priority",
    "unique",
    "concurrency",
    "rate",
];

/// The options as written; `None` where the default applies.
#[derive(Default)]
pub(crate) struct Options {
    /// `name = "…"`: the registered name.
    pub(crate) name: Option<LitStr>,
    /// `queue = "…"`.
    pub(crate) queue: Option<LitStr>,
    /// `retries = N`, kept as the attempts it allows (`N + 1`).
    pub(crate) max_attempts: Option<u32>,
    /// `key = arg`: the argument whose value is the ordering key.
    pub(crate) key: Option<Ident>,
    /// `priority = N`.
    pub(crate) priority: Option<i16>,
    /// `backoff = "…"`.
    pub(crate) backoff: Option<Backoff>,
    /// `timeout = "…"`.
    pub(crate) timeout: Option<Duration>,
    /// `unique` or `unique(…)`.
    pub(crate) unique: Option<Unique>,
    /// `concurrency = N` or `concurrency(max = N, by = arg)`.
    pub(crate) concurrency: Option<Concurrency>,
    /// `rate = "N/period"` or `rate(limit = "N/period", by = arg)`.
    pub(crate) rate: Option<Rate>,
}

/// `rate = "N/period"` or `rate(limit = "N/period", by = arg)`, read.
pub(crate) struct Rate {
    /// How many jobs start per `per`; at least 1.
    pub(crate) max: u32,
    /// The period.
    pub(crate) per: Duration,
    /// The argument the limit is kept per, if any.
    pub(crate) by: Option<Ident>,
}

/// `concurrency = N` or `concurrency(max = N, by = arg)`, read.
pub(crate) struct Concurrency {
    /// How many jobs run at once; at least 1.
    pub(crate) max: u32,
    /// The argument the limit is kept per, if any.
    pub(crate) by: Option<Ident>,
}

/// `unique` or `unique(by = arg | key = "…", until = "…" | window = "…")`,
/// read.
pub(crate) struct Unique {
    pub(crate) by: UniqueBy,
    pub(crate) until: UniqueUntil,
}

/// What the unique key is made of.
pub(crate) enum UniqueBy {
    /// All the arguments (the default).
    Args,
    /// `by = arg`: one argument's value.
    Arg(Ident),
    /// `key = "…"`: a constant.
    Key(LitStr),
}

/// How long a job holds its unique key.
#[derive(Clone, Copy)]
pub(crate) enum UniqueUntil {
    /// `until = "started"`.
    Started,
    /// `until = "finished"` (the default).
    Finished,
    /// `window = "…"`: finished, and that long after `done`.
    FinishedFor(Duration),
}

/// `backoff = "…"`, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backoff {
    /// `"exponential(BASE, MAX)"`.
    Exponential { base: Duration, max: Duration },
    /// `"fixed(DELAY)"`.
    Fixed(Duration),
    /// `"none"`.
    None,
}

/// Parses the attribute's arguments. Every problem is pushed to `errors`; the
/// options that parsed are returned either way so that the function can
/// still be checked.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                format!(
                    "{error}; #[queue_command] takes options like `queue = \"emails\", retries = 5`"
                ),
            ));
            return options;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let Some(ident) = path.get_ident() else {
            errors.push(unknown(
                path,
                &quote::ToTokens::to_token_stream(path)
                    .to_string()
                    .replace(' ', ""),
            ));
            continue;
        };
        let option = ident.to_string();
        if !KNOWN.contains(&option.as_str()) {
            errors.push(unknown(ident, &option));
            continue;
        }
        // options read from the whole attribute: a bare word, `= value`
        // or a list
        if matches!(option.as_str(), "unique" | "concurrency" | "rate") {
            if seen.contains(&option) {
                errors.push(syn::Error::new_spanned(
                    ident,
                    format!("`{option}` is given more than once"),
                ));
                continue;
            }
            let parsed = match option.as_str() {
                "unique" => unique(&meta).map(|unique| options.unique = Some(unique)),
                "concurrency" => concurrency(&meta).map(|limit| options.concurrency = Some(limit)),
                _ => rate(&meta).map(|rate| options.rate = Some(rate)),
            };
            seen.push(option);
            if let Err(error) = parsed {
                errors.push(error);
            }
            continue;
        }
        let value = match &meta {
            Meta::NameValue(name_value) => &name_value.value,
            Meta::Path(_) => {
                errors.push(syn::Error::new_spanned(
                    ident,
                    format!("`{option}` needs a value, like `{}`", example(&option)),
                ));
                continue;
            }
            Meta::List(list) => {
                errors.push(syn::Error::new_spanned(
                    list,
                    format!("`{option}` is written `{}`", example(&option)),
                ));
                continue;
            }
        };
        if seen.contains(&option) {
            errors.push(syn::Error::new_spanned(
                ident,
                format!("`{option}` is given more than once"),
            ));
            continue;
        }
        seen.push(option.clone());
        let parsed = match option.as_str() {
            "name" => string(&option, value).map(|lit| options.name = Some(lit)),
            "queue" => string(&option, value).map(|lit| options.queue = Some(lit)),
            "retries" => retries(value).map(|attempts| options.max_attempts = Some(attempts)),
            "backoff" => backoff(value).map(|backoff| options.backoff = Some(backoff)),
            "timeout" => timeout(value).map(|timeout| options.timeout = Some(timeout)),
            "key" => key(value).map(|ident| options.key = Some(ident)),
            "priority" => priority(value).map(|priority| options.priority = Some(priority)),
            _ => unreachable!("every known option is matched"),
        };
        if let Err(error) = parsed {
            errors.push(error);
        }
    }
    options
}

fn unknown(spanned: impl quote::ToTokens, option: &str) -> syn::Error {
    let known = KNOWN.map(|known| format!("`{known}`")).join(", ");
    let hint = KNOWN
        .iter()
        .filter(|known| edit_distance(known, option) <= (known.len() / 2).max(1))
        .map(|known| format!("did you mean `{known}`? "))
        .next()
        .unwrap_or_default();
    syn::Error::new_spanned(
        spanned,
        format!("unknown #[queue_command] option `{option}`; {hint}the options are {known}"),
    )
}

fn example(option: &str) -> &'static str {
    match option {
        "name" => "name = \"app::send_welcome\"",
        "queue" => "queue = \"emails\"",
        "retries" => "retries = 5",
        "backoff" => "backoff = \"exponential(1s, 1h)\"",
        "timeout" => "timeout = \"30s\"",
        "key" => "key = user_id",
        "unique" => "unique(by = user_id, until = \"started\")",
        "concurrency" => "concurrency = 3",
        "rate" => "rate = \"100/s\"",
        _ => "priority = 10",
    }
}

fn string(option: &str, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().is_empty() => Err(syn::Error::new_spanned(
            lit,
            format!("`{option}` cannot be empty"),
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{option}` takes a string literal, like `{}`",
                example(option)
            ),
        )),
    }
}

fn retries(value: &Expr) -> syn::Result<u32> {
    let error = || {
        syn::Error::new_spanned(
            value,
            "`retries` takes a whole number from 0 to 4294967294 (a job gets `retries + 1` attempts), like `retries = 5`",
        )
    };
    let Expr::Lit(ExprLit {
        lit: Lit::Int(lit), ..
    }) = value
    else {
        return Err(error());
    };
    check_suffix(lit, "u32")?;
    let retries: u32 = lit.base10_parse().map_err(|_| error())?;
    retries.checked_add(1).ok_or_else(error)
}

fn backoff(value: &Expr) -> syn::Result<Backoff> {
    let lit = string("backoff", value)?;
    read_backoff(&lit.value()).map_err(|why| {
        syn::Error::new_spanned(
            &lit,
            format!(
                "{why}; `backoff` takes \"exponential(BASE, MAX)\", \"fixed(DELAY)\" or \"none\", \
                 with durations like `500ms`, `30s`, `5m`, `1h`"
            ),
        )
    })
}

fn timeout(value: &Expr) -> syn::Result<Duration> {
    let lit = string("timeout", value)?;
    read_timeout(&lit.value()).map_err(|why| {
        syn::Error::new_spanned(
            &lit,
            format!("{why}; `timeout` takes a duration like `500ms`, `30s`, `5m`, `1h`"),
        )
    })
}

/// Reads a timeout: a duration of at least a millisecond, the unit
/// backends keep it in.
fn read_timeout(text: &str) -> Result<Duration, String> {
    read_millis(text, "every attempt would time out at once")
}

/// Reads a duration of at least a millisecond; `under` says what a shorter
/// one would do.
fn read_millis(text: &str, under: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|error| format!("cannot read `{}` as a duration: {error}", text.trim()))?;
    if duration < Duration::from_millis(1) {
        return Err(format!("`{}` is under a millisecond: {under}", text.trim()));
    }
    Ok(duration)
}

/// Reads `exponential(BASE, MAX)`, `fixed(DELAY)` or `none`.
fn read_backoff(text: &str) -> Result<Backoff, String> {
    let text = text.trim();
    if text == "none" {
        return Ok(Backoff::None);
    }
    let Some((kind, rest)) = text.split_once('(') else {
        return Err(format!("unknown backoff `{text}`"));
    };
    let Some(inner) = rest.trim_end().strip_suffix(')') else {
        return Err(format!("`{text}` lacks its closing `)`"));
    };
    let durations = inner
        .split(',')
        .map(|part| {
            humantime::parse_duration(part.trim())
                .map_err(|error| format!("cannot read `{}` as a duration: {error}", part.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match (kind.trim(), durations.as_slice()) {
        ("fixed", [delay]) => Ok(Backoff::Fixed(*delay)),
        ("exponential", [base, max]) if base.is_zero() => Err(format!(
            "the base of `{text}` is zero, so every delay would be; write \"none\" to retry at once"
        )),
        ("exponential", [base, max]) if base > max => {
            Err(format!("the base of `{text}` is longer than its maximum"))
        }
        ("exponential", [base, max]) => Ok(Backoff::Exponential {
            base: *base,
            max: *max,
        }),
        ("fixed", _) => Err(format!("`{text}` takes one duration")),
        ("exponential", _) => Err(format!(
            "`{text}` takes two durations, the base and the maximum"
        )),
        (other, _) => Err(format!("unknown backoff `{other}`")),
    }
}

fn priority(value: &Expr) -> syn::Result<i16> {
    let error = || {
        syn::Error::new_spanned(
            value,
            "`priority` takes a whole number from -32768 to 32767 (higher runs first), like `priority = 10`",
        )
    };
    let (lit, negative) = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => (lit, false),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) => (lit, true),
            _ => return Err(error()),
        },
        _ => return Err(error()),
    };
    check_suffix(lit, "i16")?;
    let magnitude: i64 = lit.base10_parse().map_err(|_| error())?;
    let priority = if negative { -magnitude } else { magnitude };
    i16::try_from(priority).map_err(|_| error())
}

fn check_suffix(lit: &LitInt, expected: &str) -> syn::Result<()> {
    match lit.suffix() {
        "" => Ok(()),
        suffix if suffix == expected => Ok(()),
        suffix => Err(syn::Error::new_spanned(
            lit,
            format!("this option is a `{expected}`; drop the `{suffix}` suffix"),
        )),
    }
}

/// Reads `unique`: alone (by all the arguments, until finished), or with a
/// list of `by = arg` or `key = "…"`, and `until = "started" | "finished"`
/// or `window = "…"`.
fn unique(meta: &Meta) -> syn::Result<Unique> {
    let mut unique = Unique {
        by: UniqueBy::Args,
        until: UniqueUntil::Finished,
    };
    let list = match meta {
        Meta::Path(_) => return Ok(unique),
        Meta::List(list) => list,
        Meta::NameValue(name_value) => {
            return Err(syn::Error::new_spanned(
                name_value,
                "`unique` is written `unique` (by all the arguments) or \
                 `unique(by = user_id, until = \"started\")`",
            ));
        }
    };
    let items = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let (mut by_seen, mut until_seen) = (None::<String>, None::<String>);
    for item in items {
        let Meta::NameValue(item) = item else {
            return Err(syn::Error::new_spanned(
                item,
                "`unique(…)` takes `by = arg` or `key = \"…\"`, and `until = \"started\"`, \
                 `until = \"finished\"` or `window = \"1h\"`",
            ));
        };
        let name = item
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let clash = |seen: &Option<String>| {
            seen.as_ref().map(|first| {
                syn::Error::new_spanned(
                    &item.path,
                    format!("`unique` takes `{name}` or `{first}`, not both"),
                )
            })
        };
        match name.as_str() {
            "by" | "key" => {
                if let Some(error) = clash(&by_seen) {
                    return Err(error);
                }
                unique.by = if name == "by" {
                    UniqueBy::Arg(key(&item.value).map_err(|_| {
                        syn::Error::new_spanned(
                            &item.value,
                            "`by` takes the name of one of the function's arguments, \
                             without quotes, like `by = user_id`",
                        )
                    })?)
                } else {
                    UniqueBy::Key(string("key", &item.value)?)
                };
                by_seen = Some(name);
            }
            "until" | "window" => {
                if let Some(error) = clash(&until_seen) {
                    return Err(error);
                }
                let lit = string(&name, &item.value)?;
                unique.until = if name == "window" {
                    UniqueUntil::FinishedFor(read_window(&lit.value()).map_err(|why| {
                        syn::Error::new_spanned(
                            &lit,
                            format!("{why}; `window` takes a duration like `30s`, `10m`, `1h`"),
                        )
                    })?)
                } else {
                    match lit.value().as_str() {
                        "started" => UniqueUntil::Started,
                        "finished" => UniqueUntil::Finished,
                        other => {
                            return Err(syn::Error::new_spanned(
                                &lit,
                                format!(
                                    "`until = \"{other}\"`: a job holds its unique key until it \
                                     is \"started\" or \"finished\" (for a time after it is \
                                     done, `window = \"1h\"`)"
                                ),
                            ));
                        }
                    }
                };
                until_seen = Some(name);
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    &item.path,
                    format!(
                        "unknown `unique` option `{name}`; the options are `by`, `key`, \
                         `until` and `window`"
                    ),
                ));
            }
        }
    }
    Ok(unique)
}

/// Reads `concurrency = N`, or `concurrency(max = N, by = arg)` for a limit
/// per value of one argument.
fn concurrency(meta: &Meta) -> syn::Result<Concurrency> {
    const FORMS: &str = "`concurrency` is written `concurrency = 3`, or \
                         `concurrency(max = 3, by = tenant)` for a limit per value of an argument";
    let (max, by) = limit_option(meta, "concurrency", "max", FORMS, limit)?;
    Ok(Concurrency { max, by })
}

/// Reads `rate = "N/period"`, or `rate(limit = "N/period", by = arg)` for
/// a limit per value of one argument.
fn rate(meta: &Meta) -> syn::Result<Rate> {
    const FORMS: &str = "`rate` is written `rate = \"100/s\"` (also `/m`, `/h` or a \
                         duration, `/500ms`), or `rate(limit = \"100/s\", by = tenant)` for a \
                         limit per value of an argument";
    let read = |value: &Expr| -> syn::Result<(u32, Duration)> {
        let lit = string("rate", value)?;
        read_rate(&lit.value())
            .map_err(|why| syn::Error::new_spanned(&lit, format!("{why}; {FORMS}")))
    };
    let ((max, per), by) = limit_option(meta, "rate", "limit", FORMS, read)?;
    Ok(Rate { max, per, by })
}

/// Reads a limit written `option = value`, or `option(first = value, by =
/// arg)` for a limit per value of one argument; `forms` says both ways.
fn limit_option<T>(
    meta: &Meta,
    option: &str,
    first: &str,
    forms: &str,
    read: impl Fn(&Expr) -> syn::Result<T>,
) -> syn::Result<(T, Option<Ident>)> {
    let list = match meta {
        Meta::NameValue(name_value) => return Ok((read(&name_value.value)?, None)),
        Meta::Path(path) => return Err(syn::Error::new_spanned(path, forms)),
        Meta::List(list) => list,
    };
    let items = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let (mut value, mut by) = (None, None);
    for item in items {
        let Meta::NameValue(item) = item else {
            return Err(syn::Error::new_spanned(item, forms));
        };
        let name = item
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if name == first && value.is_none() {
            value = Some(read(&item.value)?);
        } else if name == "by" && by.is_none() {
            by = Some(key(&item.value).map_err(|_| {
                syn::Error::new_spanned(
                    &item.value,
                    "`by` takes the name of one of the function's arguments, \
                     without quotes, like `by = tenant`",
                )
            })?);
        } else if name == first || name == "by" {
            return Err(syn::Error::new_spanned(
                &item.path,
                format!("`{option}` takes `{name}` once"),
            ));
        } else {
            return Err(syn::Error::new_spanned(
                &item.path,
                format!("unknown `{option}` option `{name}`; the options are `{first}` and `by`"),
            ));
        }
    }
    let value = value.ok_or_else(|| syn::Error::new_spanned(list, forms))?;
    Ok((value, by))
}

/// Reads `N/period`: a count of at least 1 and a period of at least a
/// millisecond, `s`, `m` (or `min`), `h`, `d`, or a duration like `500ms`.
fn read_rate(text: &str) -> Result<(u32, Duration), String> {
    let text = text.trim();
    let Some((count, period)) = text.split_once('/') else {
        return Err(format!("`{text}` lacks its `/period`"));
    };
    let max: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("`{}` is not a whole number of jobs", count.trim()))?;
    if max == 0 {
        return Err(format!("`{text}` is 0 jobs: no job would ever start"));
    }
    let period = period.trim();
    let per = if period.starts_with(|c: char| c.is_ascii_digit()) {
        read_millis(period, "the period would be empty")?
    } else {
        read_millis(&format!("1{period}"), "the period would be empty")
            .map_err(|_| format!("unknown period `{period}`"))?
    };
    Ok((max, per))
}

/// Reads a concurrency limit: a whole number of at least 1.
fn limit(value: &Expr) -> syn::Result<u32> {
    let error = || {
        syn::Error::new_spanned(
            value,
            "a concurrency limit is a whole number from 1 to 4294967295 (how many jobs run at \
             once), like `concurrency = 3`; 0 would never run a job",
        )
    };
    let Expr::Lit(ExprLit {
        lit: Lit::Int(lit), ..
    }) = value
    else {
        return Err(error());
    };
    check_suffix(lit, "u32")?;
    match lit.base10_parse::<u32>() {
        Ok(0) | Err(_) => Err(error()),
        Ok(max) => Ok(max),
    }
}

/// Reads a unique key's window: a duration of at least a millisecond.
fn read_window(text: &str) -> Result<Duration, String> {
    read_millis(text, "the key would be free at once")
}

fn key(value: &Expr) -> syn::Result<Ident> {
    if let Expr::Path(ExprPath {
        attrs,
        qself: None,
        path,
    }) = value
        && attrs.is_empty()
        && let Some(ident) = path.get_ident()
    {
        return Ok(ident.clone());
    }
    let hint = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => format!(", like `key = {}`", lit.value()),
        _ => ", like `key = user_id`".to_owned(),
    };
    Err(syn::Error::new(
        value.span(),
        format!("`key` takes the name of one of the function's arguments, without quotes{hint}"),
    ))
}

/// Levenshtein distance, for "did you mean" hints on short option names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{Backoff, Duration, edit_distance, read_backoff, read_timeout};

    #[test]
    fn timeouts_read_a_duration_of_a_millisecond_or_more() {
        assert_eq!(read_timeout(" 30s "), Ok(Duration::from_secs(30)));
        assert_eq!(read_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(read_timeout("1ms"), Ok(Duration::from_millis(1)));
        for (text, why) in [
            ("0s", "under a millisecond"),
            ("500us", "under a millisecond"),
            ("soon", "cannot read `soon`"),
            ("", "cannot read"),
        ] {
            let error = read_timeout(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn backoffs_read_their_durations() {
        let secs = Duration::from_secs;
        assert_eq!(read_backoff("none"), Ok(Backoff::None));
        assert_eq!(read_backoff("fixed(30s)"), Ok(Backoff::Fixed(secs(30))));
        assert_eq!(
            read_backoff(" exponential( 500ms , 1h 30m ) "),
            Ok(Backoff::Exponential {
                base: Duration::from_millis(500),
                max: secs(5400)
            })
        );
        for (text, why) in [
            ("linear(1s)", "unknown backoff `linear`"),
            ("fixed(1s", "lacks its closing"),
            ("fixed(1s, 2s)", "takes one duration"),
            ("exponential(1s)", "takes two durations"),
            ("exponential(0s, 1m)", "is zero"),
            ("exponential(1h, 1m)", "longer than its maximum"),
            (
                "fixed(ten seconds)",
                "cannot read `ten seconds` as a duration",
            ),
            ("sometimes", "unknown backoff `sometimes`"),
        ] {
            let error = read_backoff(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("retries", "retries"), 0);
        assert_eq!(edit_distance("retry", "retries"), 3);
        assert_eq!(edit_distance("queu", "queue"), 1);
        assert_eq!(edit_distance("name", "key"), 4);
    }
}
