//! The annotated function, as the expansion sees it.

use proc_macro2::Span;
use quote::format_ident;
use syn::{FnArg, Ident, ItemFn, Pat, PatIdent, PatType, Type};

use crate::attr::Options;

/// A function that passed validation, with its options.
pub(crate) struct Command<'a> {
    /// The function as written.
    pub(crate) function: &'a ItemFn,
    /// Its options.
    pub(crate) options: Options,
    /// Its arguments, in order, without the context.
    pub(crate) args: Vec<Arg<'a>>,
    /// Its `JobContext` parameter, if it takes one.
    pub(crate) context: Option<Context>,
}

/// The parameter of type `JobContext` or `&JobContext`, which the consumer
/// fills in and no job carries.
pub(crate) struct Context {
    /// Where it stands among the parameters.
    pub(crate) position: usize,
    /// Whether the function takes `&JobContext` rather than `JobContext`.
    pub(crate) by_ref: bool,
}

/// How a parameter's type names the job context: by its last path
/// segment, as a macro sees only tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextType {
    /// `JobContext`.
    Value,
    /// `&JobContext`.
    Ref,
    /// `&mut JobContext`, which is refused.
    RefMut,
}

/// Whether `ty` is the job context, and how it is taken.
pub(crate) fn context_type(ty: &Type) -> Option<ContextType> {
    fn names_context(ty: &Type) -> bool {
        match ty {
            Type::Path(path) => {
                path.qself.is_none()
                    && path.path.segments.last().is_some_and(|segment| {
                        segment.ident == "JobContext" && segment.arguments.is_none()
                    })
            }
            Type::Group(group) => names_context(&group.elem),
            Type::Paren(paren) => names_context(&paren.elem),
            _ => false,
        }
    }
    match ty {
        Type::Reference(reference) if names_context(&reference.elem) => {
            Some(if reference.mutability.is_some() {
                ContextType::RefMut
            } else {
                ContextType::Ref
            })
        }
        Type::Group(group) => context_type(&group.elem),
        Type::Paren(paren) => context_type(&paren.elem),
        ty if names_context(ty) => Some(ContextType::Value),
        _ => None,
    }
}

impl Context {
    /// The first context parameter of `function`, if any.
    pub(crate) fn find(function: &ItemFn) -> Option<Context> {
        typed_inputs(function)
            .enumerate()
            .find_map(|(position, input)| match context_type(&input.ty)? {
                ContextType::Value => Some(Context {
                    position,
                    by_ref: false,
                }),
                ContextType::Ref | ContextType::RefMut => Some(Context {
                    position,
                    by_ref: true,
                }),
            })
    }
}

/// The typed parameters of `function`, skipping a `self` receiver (which
/// validation rejects).
pub(crate) fn typed_inputs(function: &ItemFn) -> impl Iterator<Item = &PatType> {
    function.sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(typed) => Some(typed),
        FnArg::Receiver(_) => None,
    })
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
    /// The arguments of `function` a job carries: all but a `self`
    /// receiver (which validation rejects) and the job context.
    pub(crate) fn all(function: &'a ItemFn) -> Vec<Arg<'a>> {
        typed_inputs(function)
            .filter(|input| context_type(&input.ty).is_none())
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
