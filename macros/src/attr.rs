//! The options inside `#[queue_command(...)]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, ExprUnary, Ident, Lit, LitInt, LitStr, Meta, Token, UnOp};

use crate::Errors;

/// The option names, in the order the docs list them.
const KNOWN: [&str; 5] = ["name", "queue", "retries", "key", "priority"];

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
        "key" => "key = user_id",
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
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("retries", "retries"), 0);
        assert_eq!(edit_distance("retry", "retries"), 3);
        assert_eq!(edit_distance("queu", "queue"), 1);
        assert_eq!(edit_distance("name", "key"), 4);
    }
}
