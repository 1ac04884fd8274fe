//! What `#[queue_command]` refuses, each with a span on the offending tokens.
//!
//! A command's arguments are encoded when it is called and decoded later, in
//! another process, by a consumer that knows only the command's name. So the
//! function must be a free, non-generic, safe function whose argument
//! types are concrete and owned. The `Serialize + DeserializeOwned` bound
//! itself is left to the compiler (see `expand::serde_assertions`).

use quote::ToTokens;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type, TypeReference};

use crate::Errors;
use crate::ast::{Arg, ContextType, context_type};
use crate::attr::Options;

/// Checks the function's signature, in source order.
pub(crate) fn check_function(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a #[queue_command] function cannot be `const`: calling it enqueues a job, which cannot happen at compile time",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a #[queue_command] function cannot be `unsafe`: a consumer calls it with nobody to uphold its safety contract; make it safe and put the `unsafe` block inside",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "a #[queue_command] function cannot have an `extern` ABI: a consumer calls it as a Rust function",
        ));
    }
    for attr in &function.attrs {
        if attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "queue_command")
        {
            errors.push(syn::Error::new_spanned(
                attr,
                "#[queue_command] is applied twice; keep one, with all the options",
            ));
        }
    }
    const GENERIC: &str = "a #[queue_command] function cannot be generic: a consumer decodes a job's arguments knowing only the command's name, so every argument type must be concrete and owned";
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, GENERIC));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(where_clause, GENERIC));
    }
    let mut contexts = 0;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "#[queue_command] goes on a free function, not a method: `self` cannot be sent to a consumer; pass what the command needs as arguments",
            )),
            FnArg::Typed(typed) => {
                for attr in &typed.attrs {
                    if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                        errors.push(syn::Error::new_spanned(
                            attr,
                            "#[queue_command] arguments cannot be conditional: producers and consumers must agree on the arguments a job carries",
                        ));
                    }
                }
                match context_type(&typed.ty) {
                    None => check_type(&typed.ty, errors),
                    Some(ContextType::RefMut) => errors.push(syn::Error::new_spanned(
                        &typed.ty,
                        "take the job context as `&JobContext` or `JobContext`: it is shared with the consumer running the job, so it cannot be borrowed mutably",
                    )),
                    Some(ContextType::Value | ContextType::Ref) => {
                        contexts += 1;
                        if contexts > 1 {
                            errors.push(syn::Error::new_spanned(
                                &typed.ty,
                                "a #[queue_command] function takes at most one job context",
                            ));
                        }
                    }
                }
            }
        }
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a #[queue_command] function cannot be variadic",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && let Some(impl_trait) = find_impl(ty)
    {
        errors.push(syn::Error::new_spanned(
            impl_trait,
            "name the type a #[queue_command] function returns: enqueueing it returns a `JobHandle<T>` typed by the value, which an `impl Trait` cannot name",
        ));
    }
}

/// The first `impl Trait` inside `ty`, if any.
fn find_impl(ty: &Type) -> Option<&syn::TypeImplTrait> {
    match ty {
        Type::ImplTrait(impl_trait) => Some(impl_trait),
        Type::Array(array) => find_impl(&array.elem),
        Type::Group(group) => find_impl(&group.elem),
        Type::Paren(paren) => find_impl(&paren.elem),
        Type::Slice(slice) => find_impl(&slice.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(find_impl),
        Type::Path(path) => path.path.segments.iter().find_map(|segment| {
            let PathArguments::AngleBracketed(bracketed) = &segment.arguments else {
                return None;
            };
            bracketed.args.iter().find_map(|arg| match arg {
                GenericArgument::Type(ty) => find_impl(ty),
                _ => None,
            })
        }),
        _ => None,
    }
}

/// Checks that `key = …` and the `by = …` of `unique`, `concurrency` and
/// `rate` name an argument.
pub(crate) fn check_key(
    function: &ItemFn,
    options: &Options,
    args: &[Arg<'_>],
    errors: &mut Errors,
) {
    if let Some(key) = &options.key {
        check_names_argument(function, "key", key, args, errors);
    }
    if let Some(crate::attr::Unique {
        by: crate::attr::UniqueBy::Arg(by),
        ..
    }) = &options.unique
    {
        check_names_argument(function, "by", by, args, errors);
    }
    if let Some(crate::attr::Concurrency { by: Some(by), .. }) = &options.concurrency {
        check_names_argument(function, "by", by, args, errors);
    }
    if let Some(crate::attr::Rate { by: Some(by), .. }) = &options.rate {
        check_names_argument(function, "by", by, args, errors);
    }
}

/// Checks that `option = key` names an argument.
fn check_names_argument(
    function: &ItemFn,
    option: &str,
    key: &syn::Ident,
    args: &[Arg<'_>],
    errors: &mut Errors,
) {
    if args.iter().any(|arg| arg.declared == Some(key)) {
        return;
    }
    let name = &function.sig.ident;
    let names: Vec<String> = args
        .iter()
        .filter_map(|arg| arg.declared)
        .map(|ident| format!("`{ident}`"))
        .collect();
    let known = if names.is_empty() {
        format!("`{name}` has no named arguments")
    } else {
        format!("the arguments of `{name}` are {}", names.join(", "))
    };
    let patterns = if args.iter().any(|arg| arg.declared.is_none()) {
        " (an argument bound by a pattern cannot be the key)"
    } else {
        ""
    };
    errors.push(syn::Error::new_spanned(
        key,
        format!("`{option} = {key}` names no argument of `{name}`; {known}{patterns}"),
    ));
}

/// Rejects borrowed and `impl Trait` types anywhere inside an argument type.
fn check_type(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Reference(reference) => errors.push(syn::Error::new_spanned(
            reference,
            format!(
                "#[queue_command] arguments must be owned, because a job's arguments are stored and decoded later by a consumer: use {} instead of `{}`",
                owned_suggestion(reference),
                pretty(reference),
            ),
        )),
        Type::ImplTrait(impl_trait) => errors.push(syn::Error::new_spanned(
            impl_trait,
            "an `impl Trait` argument makes a #[queue_command] function generic; a consumer decodes a job's arguments knowing only the command's name, so name the concrete type",
        )),
        Type::Array(array) => check_type(&array.elem, errors),
        Type::Group(group) => check_type(&group.elem, errors),
        Type::Paren(paren) => check_type(&paren.elem, errors),
        Type::Slice(slice) => check_type(&slice.elem, errors),
        Type::Tuple(tuple) => tuple.elems.iter().for_each(|elem| check_type(elem, errors)),
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                check_type(&qself.ty, errors);
            }
            for segment in &path.path.segments {
                let PathArguments::AngleBracketed(bracketed) = &segment.arguments else {
                    continue;
                };
                for arg in &bracketed.args {
                    match arg {
                        GenericArgument::Type(ty) => check_type(ty, errors),
                        GenericArgument::AssocType(assoc) => check_type(&assoc.ty, errors),
                        GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                            errors.push(syn::Error::new_spanned(
                                lifetime,
                                format!(
                                    "#[queue_command] arguments cannot borrow, because a job's arguments are stored and decoded later by a consumer: use `'static` instead of `{lifetime}`, or an owned type",
                                ),
                            ));
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
}

/// The owned type to suggest instead of a reference, in backticks.
fn owned_suggestion(reference: &TypeReference) -> String {
    let suggestion = match &*reference.elem {
        Type::Path(path) if path.qself.is_none() => {
            let last = path
                .path
                .segments
                .last()
                .map(|segment| segment.ident.to_string());
            match last.as_deref() {
                Some("str") => "String".to_owned(),
                Some("Path") => "PathBuf".to_owned(),
                Some("OsStr") => "OsString".to_owned(),
                Some("CStr") => "CString".to_owned(),
                _ => pretty(path),
            }
        }
        Type::Slice(slice) => format!("Vec<{}>", pretty(&slice.elem)),
        Type::TraitObject(_) => return "an owned type".to_owned(),
        other => pretty(other),
    };
    format!("`{suggestion}`")
}

/// Tokens as a person would write them: `Vec<u8>`, not `Vec < u8 >`.
pub(crate) fn pretty(tokens: impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" ::", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        ("[ ", "["),
        (" ]", "]"),
        ("( ", "("),
        (" )", ")"),
        (" ;", ";"),
    ] {
        text = text.replace(from, to);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::pretty;

    #[test]
    fn pretty_prints_types_as_written() {
        let ty: syn::Type =
            syn::parse_str("&'a std::collections::HashMap<String, Vec<[u8; 4]>>").unwrap();
        assert_eq!(
            pretty(&ty),
            "&'a std::collections::HashMap<String, Vec<[u8; 4]>>"
        );
        let ty: syn::Type = syn::parse_str("&mut (u8, String)").unwrap();
        assert_eq!(pretty(&ty), "&mut (u8, String)");
    }
}
