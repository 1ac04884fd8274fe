//! What an invalid command expands to.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The item exactly as written, plus the errors. Keeping the item means the
/// only errors the user sees are the macro's own, not a cascade of "cannot
/// find function" at every use of it.
pub(crate) fn expand(item: impl ToTokens, error: &syn::Error) -> TokenStream {
    let mut tokens = error.to_compile_error();
    item.to_tokens(&mut tokens);
    tokens
}
