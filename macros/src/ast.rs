//! The annotated function, as the expansion sees it.

use proc_macro2::Span;
use quote::format_ident;
use syn::{FnArg, Ident, ItemFn, Pat, PatIdent, Type};

use crate::attr::Options;

/// A function that passed validation, with its options.
pub(crate) struct Command<'a> {
    /// The function as written.
    pub(crate) function: &'a ItemFn,
    /// Its options.
    pub(crate) options: Options,
    /// Its arguments, in order.
    pub(crate) args: Vec<Arg<'a>>,
}

/// One argument of the function.
pub(crate) struct Arg<'a> {
    /// The name it is bound to in the generated functions: the argument's own
    /// identifier, or `outband_arg{i}` for a pattern that is not one.
    pub(crate) binding: Ident,
    /// The identifier the user gave it, if its pattern is a plain identifier;
    /// only these can be named by `key = …`.
    pub(crate) declared: Option<&'a Ident>,
    /// Its type.
    pub(crate) ty: &'a Type,
}

impl<'a> Arg<'a> {
    /// The arguments of `function`, skipping a `self` receiver (which
    /// validation rejects).
    pub(crate) fn all(function: &'a ItemFn) -> Vec<Arg<'a>> {
        function
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) => Some(typed),
                FnArg::Receiver(_) => None,
            })
            .enumerate()
            .map(|(index, original)| {
                let declared = plain_ident(&original.pat);
                let binding = match declared {
                    Some(ident) => ident.clone(),
                    // Mixed-site hygiene: a generated name never clashes with
                    // a user's argument, whatever it is called.
                    None => format_ident!("outband_arg{}", index, span = Span::mixed_site()),
                };
                Arg {
                    binding,
                    declared,
                    ty: &original.ty,
                }
            })
            .collect()
    }
}

/// `x` or `mut x`, but not `ref x`, `x @ …`, `_` or a destructuring pattern.
fn plain_ident(pat: &Pat) -> Option<&Ident> {
    match pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            ..
        }) => Some(ident),
        _ => None,
    }
}
