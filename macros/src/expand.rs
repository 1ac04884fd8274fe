//! The code a valid command expands to.
//!
//! Generated code names only `::outband::…`, `::core::…` and `::std::…`
//! paths: users depend on `outband` alone, and `outband` itself uses the
//! macro through `extern crate self as outband`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, ReturnType, Type, Visibility};

use crate::ast::{Arg, Command};
use crate::attr;

pub(crate) fn expand(command: &Command<'_>) -> TokenStream {
    let function = command.function;
    let options = &command.options;
    let vis = &function.vis;
    let sig = &function.sig;
    let ident = &sig.ident;
    let name_text = ident.unraw().to_string();

    let command_const = format_ident!("__OUTBAND_COMMAND_{}", ident);
    let run_fn = format_ident!("__outband_run_{}", ident);
    let args_fn = format_ident!("__outband_args_{}", ident);
    let call_fn = format_ident!("__outband_call_{}", ident);
    let schedule_fn = format_ident!("__outband_schedule_{}", ident);
    let enqueue_on_fn = format_ident!("__outband_enqueue_on_{}", ident);
    let enqueue_fn = format_ident!("__outband_enqueue_{}", ident);
    let job_fn = format_ident!("__outband_job_{}", ident);
    let show_args_fn = format_ident!("__outband_show_args_{}", ident);
    let show_result_fn = format_ident!("__outband_show_result_{}", ident);
    let enqueue_many_fn = format_ident!("__outband_enqueue_many_{}", ident);
    let enqueue_many_on_fn = format_ident!("__outband_enqueue_many_on_{}", ident);
    // An `async fn`'s body is awaited where a plain one is called.
    let is_async = sig.asyncness.is_some();
    let awaited = is_async.then(|| quote!(.await));

    // `#[cfg]` must hold for every generated item alike; docs go to the
    // enqueueing function and to `call`; `#[deprecated]` to every function a
    // user calls; everything else (`#[inline]`, `#[must_use]`, `#[allow]`,
    // other attribute macros…) stays with the body, in `call`.
    let is = |attr: &Attribute, name: &str| attr.path().is_ident(name);
    let cfgs: Vec<&Attribute> = function.attrs.iter().filter(|a| is(a, "cfg")).collect();
    let docs: Vec<&Attribute> = function.attrs.iter().filter(|a| is(a, "doc")).collect();
    let deprecated: Vec<&Attribute> = function
        .attrs
        .iter()
        .filter(|a| is(a, "deprecated"))
        .collect();
    let others = function
        .attrs
        .iter()
        .filter(|a| !is(a, "cfg") && !is(a, "doc"));

    let name = match &options.name {
        Some(name) => quote!(#name),
        None => {
            let suffix = format!("::{name_text}");
            quote!(::core::concat!(::core::module_path!(), #suffix))
        }
    };
    // Defaults come from the facade, so the two crates cannot disagree.
    let queue = match &options.queue {
        Some(queue) => quote!(#queue),
        None => quote!(::outband::DEFAULT_QUEUE),
    };
    let max_attempts = match options.max_attempts {
        Some(attempts) => quote!(#attempts),
        None => quote!(::outband::DEFAULT_MAX_ATTEMPTS),
    };
    let priority = options.priority.unwrap_or(0);
    let key_field = match &options.key {
        Some(key) => {
            let key = key.unraw().to_string();
            quote!(::core::option::Option::Some(#key))
        }
        None => quote!(::core::option::Option::None),
    };
    let unique_field = match &options.unique {
        Some(unique) => {
            let by = match &unique.by {
                attr::UniqueBy::Args => quote!(::outband::UniqueBy::Args),
                attr::UniqueBy::Arg(arg) => {
                    let arg = arg.unraw().to_string();
                    quote!(::outband::UniqueBy::Arg(#arg))
                }
                attr::UniqueBy::Key(key) => quote!(::outband::UniqueBy::Key(#key)),
            };
            let until = match unique.until {
                attr::UniqueUntil::Started => quote!(::outband::UniqueUntil::Started),
                attr::UniqueUntil::Finished => quote!(::outband::UniqueUntil::Finished),
                attr::UniqueUntil::FinishedFor(window) => {
                    let window = duration(window);
                    quote!(::outband::UniqueUntil::FinishedFor(#window))
                }
            };
            quote!(::core::option::Option::Some(::outband::UniqueSpec { by: #by, until: #until }))
        }
        None => quote!(::core::option::Option::None),
    };
    let concurrency_field = match &options.concurrency {
        Some(concurrency) => {
            let max = concurrency.max;
            let by = match &concurrency.by {
                Some(by) => {
                    let by = by.unraw().to_string();
                    quote!(::core::option::Option::Some(#by))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(::core::option::Option::Some(::outband::ConcurrencySpec { max: #max, by: #by }))
        }
        None => quote!(::core::option::Option::None),
    };
    let rate_field = match &options.rate {
        Some(rate) => {
            let max = rate.max;
            let per = duration(rate.per);
            let by = match &rate.by {
                Some(by) => {
                    let by = by.unraw().to_string();
                    quote!(::core::option::Option::Some(#by))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(::core::option::Option::Some(::outband::RateSpec { max: #max, per: #per, by: #by }))
        }
        None => quote!(::core::option::Option::None),
    };
    let backoff = match options.backoff {
        Some(attr::Backoff::Exponential { base, max }) => {
            let (base, max) = (duration(base), duration(max));
            quote!(::outband::Backoff::Exponential { base: #base, max: #max })
        }
        Some(attr::Backoff::Fixed(delay)) => {
            let delay = duration(delay);
            quote!(::outband::Backoff::Fixed(#delay))
        }
        Some(attr::Backoff::None) => quote!(::outband::Backoff::None),
        None => quote!(::outband::Backoff::Consumer),
    };
    let timeout = match options.timeout {
        Some(timeout) => {
            let timeout = duration(timeout);
            quote!(::core::option::Option::Some(#timeout))
        }
        None => quote!(::core::option::Option::None),
    };
    // `file!()`/`line!()` of the function's name, not of the attribute.
    let file = quote_spanned!(ident.span()=> ::core::file!());
    let line = quote_spanned!(ident.span()=> ::core::line!());

    let bindings: Vec<&Ident> = command.args.iter().map(|arg| &arg.binding).collect();
    let types: Vec<&Type> = command.args.iter().map(|arg| arg.ty).collect();
    let params = quote!(#(#bindings: #types),*);
    let args_call = quote!(#args_fn(#(#bindings),*));
    // `{}` rather than `()` for no arguments: clippy's `unused_unit`.
    let args_tuple = (!bindings.is_empty()).then(|| quote!((#(#bindings,)*)));

    // When an argument type is not `Serialize + DeserializeOwned`, rustc
    // reports the assertions on the type itself. Encoding and decoding the
    // tuple fail too; their spans put those reports on the argument list, and
    // one `-> impl Serialize` function encodes for all three enqueueing
    // functions, so encoding adds one report, not three.
    let params_span = sig.paren_token.span.join();
    let encoded = quote_spanned!(params_span=> impl ::outband::__private::serde::Serialize);
    let decoded = quote_spanned!(params_span=> (#(#types,)*));

    // A batch takes one item per job: `()` without arguments, the argument
    // itself with one, a tuple of them with more.
    let (item_type, item_pattern) = match (types.as_slice(), bindings.as_slice()) {
        ([], _) => (quote!(()), quote!(())),
        ([ty], [binding]) => (quote!(#ty), quote!(#binding)),
        _ => (quote!((#(#types),*)), quote!((#(#bindings),*))),
    };
    let items = Ident::new("items", Span::mixed_site());
    // How `job ID` shows a stored job: its arguments by name, and its result
    // through the return type when that can be named and read back.
    let arg_names: Vec<String> = command
        .args
        .iter()
        .enumerate()
        .map(|(index, arg)| match arg.declared {
            Some(declared) => declared.unraw().to_string(),
            None => format!("arg{}", index + 1),
        })
        .collect();
    let show_bytes = Ident::new("bytes", Span::mixed_site());
    let show_result_body = match shown_result_type(&sig.output) {
        Some(ty) => quote! {
            #[allow(unused_imports)]
            use ::outband::__private::{HideResult as _, ShowResult as _};
            (&::outband::__private::ResultProbe::<#ty>::new()).show(#show_bytes)
        },
        None => quote! {
            let _ = #show_bytes;
            ::core::option::Option::None
        },
    };
    let jobs = Ident::new("jobs", Span::mixed_site());
    // A batch's jobs, built by `job` from its items: all, or the first error.
    let collect_jobs = quote! {
        let #jobs = ::core::iter::Iterator::collect::<
            ::core::result::Result<::std::vec::Vec<::outband::NewJob>, ::outband::Error>,
        >(::core::iter::Iterator::map(
            ::core::iter::IntoIterator::into_iter(#items),
            |#item_pattern| #job_fn(#(#bindings),*),
        ))?;
    };

    let key = Ident::new("outband_key", Span::mixed_site());
    let key_value = match &options.key {
        // The key is `key = …`'s own identifier (it resolves to the
        // argument), so a key type without `Display` is reported there.
        Some(key_option) => quote_spanned! {key_option.span()=>
            ::core::option::Option::Some(::std::string::ToString::to_string(&#key_option))
        },
        None => quote!(::core::option::Option::None),
    };
    // With `unique(by = arg)` or `concurrency(by = arg)`, the call's keys
    // carry the argument's value too, shown as the ordering key is.
    let shown = |by: &Ident| {
        quote_spanned! {by.span()=>
            ::core::option::Option::Some(::std::string::ToString::to_string(&#by))
        }
    };
    let none = quote!(::core::option::Option::None);
    let unique_value = match &options.unique {
        Some(attr::Unique {
            by: attr::UniqueBy::Arg(by),
            ..
        }) => Some(shown(by)),
        _ => None,
    };
    let concurrency_value = match &options.concurrency {
        Some(attr::Concurrency { by: Some(by), .. }) => Some(shown(by)),
        _ => None,
    };
    let rate_value = match &options.rate {
        Some(attr::Rate { by: Some(by), .. }) => Some(shown(by)),
        _ => None,
    };
    let key_value = if unique_value.is_none() && concurrency_value.is_none() && rate_value.is_none()
    {
        key_value
    } else {
        let [unique_value, concurrency_value, rate_value] =
            [unique_value, concurrency_value, rate_value]
                .map(|value| value.unwrap_or_else(|| none.clone()));
        quote! {
            ::outband::__private::Keys {
                order: #key_value,
                unique: #unique_value,
                concurrency: #concurrency_value,
                rate: #rate_value,
            }
        }
    };

    let run_bytes = Ident::new("args", Span::mixed_site());
    // The body is called with the decoded arguments and, where the function
    // takes it, the job's context: the run's `&JobContext`, or for an async
    // command an owned clone that its future keeps.
    let run_context = Ident::new("context", Span::mixed_site());
    let owned_context = Ident::new("owned_context", Span::mixed_site());
    let mut call_args: Vec<TokenStream> = bindings.iter().map(|b| quote!(#b)).collect();
    if let Some(context) = &command.context {
        let argument = match (is_async, context.by_ref) {
            (false, true) => quote!(#run_context),
            (false, false) => quote!(::core::clone::Clone::clone(#run_context)),
            (true, true) => quote!(&#owned_context),
            (true, false) => quote!(#owned_context),
        };
        call_args.insert(context.position.min(call_args.len()), argument);
    }
    let keep_context = match (&command.context, is_async) {
        (Some(_), true) => quote!(let #owned_context = ::core::clone::Clone::clone(#run_context);),
        _ => quote!(let _ = #run_context;),
    };
    let output = match &sig.output {
        ReturnType::Default => {
            quote!(::outband::__private::output_value(#call_fn(#(#call_args),*) #awaited))
        }
        ReturnType::Type(_, ty) => {
            // Located on the return type, where a missing `Serialize` (or
            // `Display` on the error) is reported.
            let (first, last) = span_range(ty);
            let mut call = call_fn.clone();
            call.set_span(call.span().located_at(first));
            let call_args = quote_spanned!(last=> (#(#call_args),*) #awaited);
            if returns_result(ty) {
                // A `Fail` says what its error means; any other error type
                // is an ordinary failure (see `__private::Failure`).
                let error = Ident::new("error", Span::mixed_site());
                quote_spanned! {first=>
                    ::outband::__private::output_result(#call #call_args, |#error| {
                        #[allow(unused_imports)]
                        use ::outband::__private::{FailError as _, OtherError as _};
                        (&::outband::__private::Failure(#error)).run_error()
                    })
                }
            } else {
                quote_spanned!(first=> ::outband::__private::output_value(#call #call_args))
            }
        }
    };

    // A plain `fn` runs on the consumer's thread; an `async fn` decodes its
    // arguments at once and runs as a future, which must be `Send`: the
    // bound of `run_async`, reported on `async`.
    let decoded_args = Ident::new("decoded", Span::mixed_site());
    let (run_kind, run_signature, run_body) = match &sig.asyncness {
        None => (
            quote!(Sync),
            quote! {
                ::core::result::Result<
                    ::core::option::Option<::std::vec::Vec<u8>>,
                    ::outband::__private::RunError,
                >
            },
            quote! {
                #keep_context
                let (#(#bindings,)*) = ::outband::__private::decode_args::<#decoded>(#run_bytes)?;
                #output
            },
        ),
        Some(asyncness) => {
            let run_async = quote_spanned!(asyncness.span()=> ::outband::__private::run_async);
            (
                quote!(Async),
                quote!(::outband::__private::CommandFuture),
                quote! {
                    #keep_context
                    let #decoded_args = ::outband::__private::decode_args::<#decoded>(#run_bytes);
                    #run_async(async move {
                        let (#(#bindings,)*) = #decoded_args?;
                        #output
                    })
                },
            )
        }
    };

    let at_or_after = Ident::new("at_or_after", Span::mixed_site());
    let backend_param = Ident::new("backend", Span::mixed_site());
    let inner_vis = visibility_from_child(vis);
    // What a handle of this command's jobs reads: validation refuses a
    // return type that cannot be named, so `()` is only a stand-in there.
    let returns = shown_result_type(&sig.output).unwrap_or_else(|| quote!(()));
    let handle_type = quote!(::outband::JobHandle<#returns>);
    // `f::handle(id)`
    let handle_fn = format_ident!("__outband_handle_{}", ident);
    let handle_id = Ident::new("id", Span::mixed_site());
    let handle_doc = format!(
        "The [`JobHandle`](::outband::JobHandle) of job `id` of \
         [`{name_text}`](fn@super::{ident}), to wait for the value it returns: \
         for an id that `enqueue_on`, `enqueue_many` or another enqueue of it \
         gave (`{name_text}(…)` and `{name_text}::enqueue(…).await` return the \
         handle itself). It reads the default backend; \
         [`on`](::outband::JobHandle::on) reads another.",
    );
    let handle_fn_item = quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #vis fn #handle_fn(#handle_id: ::outband::JobId) -> #handle_type {
            ::outband::JobHandle::new(#handle_id, &#command_const)
        }
    };
    let handle_use = quote! {
        #[doc = #handle_doc]
        #[doc(inline)]
        #[allow(unused_imports)]
        #inner_vis use super::#handle_fn as handle;
    };
    let serde_assertions = serde_assertions(&command.args, &cfgs);

    // Only under the user's own docs: a command without docs should still
    // trip the user's `missing_docs`.
    let docs_suffix = (!docs.is_empty()).then(|| enqueue_doc(ident, &docs));
    let mod_doc = format!(
        "Companions of the queue command [`{name_text}`](fn@{ident}): \
         [`call`]({ident}::call) runs it inline, \
         [`enqueue`]({ident}::enqueue) enqueues it from async code, with one `.await`, \
         [`schedule`]({ident}::schedule) enqueues it to run later, \
         [`enqueue_on`]({ident}::enqueue_on) enqueues it on a given backend, \
         [`enqueue_many`]({ident}::enqueue_many) enqueues a batch in one call, \
         [`job`]({ident}::job) builds its job without storing it, \
         and [`NAME`]({ident}::NAME) is its registered name.",
    );
    let call_doc = if is_async {
        format!(
            "[`{name_text}`](fn@super::{ident})'s body, as a future to await \
             inline, now, in the caller's task. Nothing is enqueued.",
        )
    } else {
        format!(
            "Runs [`{name_text}`](fn@super::{ident})'s body inline, now, on this \
             thread, and returns what it returns. Nothing is enqueued.",
        )
    };
    let enqueue_doc_text = format!(
        "Enqueues [`{name_text}`](fn@super::{ident}) from async code: `.await` \
         the [`Enqueue`](::outband::Enqueue) it returns to store the job on the \
         default backend, ready now, and get its \
         [`JobHandle`](::outband::JobHandle), without blocking the \
         runtime. [`at`](::outband::Enqueue::at) schedules it, \
         [`on`](::outband::Enqueue::on) picks another backend.\n\n\
         ```ignore\n\
         async fn handler() -> Result<(), outband::Error> {{\n    \
         let job = {name_text}::enqueue(…).await?;\n    \
         Ok(())\n\
         }}\n\
         ```\n\n\
         # Errors\n\n\
         The awaited result fails as [`{name_text}`](fn@super::{ident}) does.",
    );
    let schedule_doc = format!(
        "Enqueues [`{name_text}`](fn@super::{ident}) on the default backend to run \
         at or after `at_or_after`: a [`When`](::outband::When), a \
         [`SystemTime`](::std::time::SystemTime), or a \
         [`Duration`](::std::time::Duration) from when the backend stores it.\n\n\
         # Errors\n\n\
         Fails as [`{name_text}`](fn@super::{ident}) does.",
    );
    let enqueue_on_doc = format!(
        "Enqueues [`{name_text}`](fn@super::{ident}) on `backend` instead of the \
         default one, ready now.\n\n\
         # Errors\n\n\
         [`Error::Codec`](::outband::Error::Codec) when the arguments cannot be \
         encoded, or the backend's error when it refuses the job.",
    );

    let job_doc = format!(
        "The job that [`{name_text}`](fn@super::{ident}) would enqueue, with the \
         command's options (queue, priority, attempts, ordering key), ready now, \
         without storing it: for a backend's own calls, such as `outband-diesel`'s \
         `enqueue_in`, which enqueues inside the caller's transaction. \
         [`NewJob::when`](::outband::NewJob::when) schedules it.\n\n\
         # Errors\n\n\
         [`Error::Codec`](::outband::Error::Codec) when the arguments cannot be encoded.",
    );
    let batch_item = match command.args.len() {
        0 => "`()`".to_owned(),
        1 => "the argument".to_owned(),
        _ => "a tuple of the arguments, in order".to_owned(),
    };
    let enqueue_many_doc = format!(
        "Enqueues one job of [`{name_text}`](fn@super::{ident}) per item ({batch_item}) \
         on the default backend, ready now, in one call: all of them or, on an \
         error, none. Returns their ids in the items' order. In eager mode each \
         runs inline, in order, and the first failure ends the batch.\n\n\
         # Errors\n\n\
         [`Error::Codec`](::outband::Error::Codec) when an item cannot be encoded \
         (nothing is enqueued), or the backend's error.",
    );
    let enqueue_many_on_doc = "[`enqueue_many`](self::enqueue_many) on `backend` instead of \
         the default one.\n\n\
         # Errors\n\n\
         As [`enqueue_many`](self::enqueue_many).";

    let call_sig = syn::Signature {
        ident: call_fn.clone(),
        ..sig.clone()
    };
    let block = &function.block;

    quote! {
        #serde_assertions

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis const #command_const: ::outband::__private::Command = ::outband::__private::Command {
            name: #name,
            queue: #queue,
            max_attempts: #max_attempts,
            priority: #priority,
            key: #key_field,
            unique: #unique_field,
            concurrency: #concurrency_field,
            rate: #rate_field,
            backoff: #backoff,
            timeout: #timeout,
            show_args: #show_args_fn,
            show_result: #show_result_fn,
            file: #file,
            line: #line,
            run: ::outband::__private::Run::#run_kind(#run_fn),
        };

        #(#cfgs)*
        ::outband::__private::inventory::submit! { #command_const }

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(deprecated)]
        fn #run_fn(#run_bytes: &[u8], #run_context: &::outband::JobContext) -> #run_signature {
            #run_body
        }

        #(#cfgs)*
        #[doc(hidden)]
        fn #show_args_fn(#show_bytes: &[u8]) -> ::core::result::Result<::std::string::String, ::std::string::String> {
            #[allow(unused_imports)]
            use ::outband::__private::{HideArgs as _, ShowArgs as _};
            (&::outband::__private::ArgsProbe::<(#(#types,)*)>::new()).show(#show_bytes, &[#(#arg_names),*])
        }

        #(#cfgs)*
        #[doc(hidden)]
        fn #show_result_fn(#show_bytes: &[u8]) -> ::core::option::Option<::core::result::Result<::std::string::String, ::std::string::String>> {
            #show_result_body
        }

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(clippy::too_many_arguments)]
        fn #args_fn(#params) -> #encoded {
            #args_tuple
        }

        #(#docs)*
        #docs_suffix
        #(#cfgs)*
        #(#deprecated)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #ident(#params) -> ::core::result::Result<#handle_type, ::outband::Error> {
            let #key = #key_value;
            ::outband::__private::submit_default(
                &#command_const,
                ::outband::When::Now,
                #key,
                &#args_call,
            )
        }

        #(#docs)*
        #[doc(hidden)]
        // Don't suggest what the macro refuses: a `const fn`, or borrowing an
        // argument that a consumer decodes into an owned value.
        #[allow(clippy::missing_const_for_fn, clippy::needless_pass_by_value)]
        #(#others)*
        #(#cfgs)*
        #vis #call_sig #block

        #(#cfgs)*
        #[doc(hidden)]
        #(#deprecated)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #schedule_fn(
            #at_or_after: impl ::core::convert::Into<::outband::When>,
            #params
        ) -> ::core::result::Result<#handle_type, ::outband::Error> {
            let #key = #key_value;
            ::outband::__private::submit_default(
                &#command_const,
                ::core::convert::Into::into(#at_or_after),
                #key,
                &#args_call,
            )
        }

        #(#cfgs)*
        #[doc(hidden)]
        #(#deprecated)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #enqueue_on_fn(
            #backend_param: &(impl ::outband::BaseQueue + ?::core::marker::Sized),
            #params
        ) -> ::core::result::Result<::outband::JobId, ::outband::Error> {
            let #key = #key_value;
            ::outband::__private::submit_on(
                #backend_param,
                &#command_const,
                ::outband::When::Now,
                #key,
                &#args_call,
            )
        }

        #(#cfgs)*
        #[doc(hidden)]
        #(#deprecated)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #job_fn(#params) -> ::core::result::Result<::outband::NewJob, ::outband::Error> {
            let #key = #key_value;
            ::outband::__private::job(&#command_const, #key, &#args_call)
        }

        #(#cfgs)*
        #[doc(hidden)]
        #(#deprecated)*
        // it calls `job`, which carries the command's `#[deprecated]` too
        #[allow(deprecated)]
        #vis fn #enqueue_many_fn(
            #items: impl ::core::iter::IntoIterator<Item = #item_type>,
        ) -> ::core::result::Result<::std::vec::Vec<::outband::JobId>, ::outband::Error> {
            #collect_jobs
            ::outband::__private::submit_many_default(&#command_const, #jobs)
        }

        #(#cfgs)*
        #[doc(hidden)]
        #(#deprecated)*
        // it calls `job`, which carries the command's `#[deprecated]` too
        #[allow(deprecated)]
        #vis fn #enqueue_many_on_fn(
            #backend_param: &(impl ::outband::BaseQueue + ?::core::marker::Sized),
            #items: impl ::core::iter::IntoIterator<Item = #item_type>,
        ) -> ::core::result::Result<::std::vec::Vec<::outband::JobId>, ::outband::Error> {
            #collect_jobs
            ::outband::__private::submit_many_on(#backend_param, #jobs)
        }

        #(#cfgs)*
        #[doc(hidden)]
        #(#deprecated)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #enqueue_fn(#params) -> ::outband::Enqueue<#returns> {
            let #key = #key_value;
            ::outband::__private::enqueue(&#command_const, #key, &#args_call)
        }

        #handle_fn_item

        #(#cfgs)*
        #[doc = #mod_doc]
        #vis mod #ident {
            #handle_use
            #[doc = #call_doc]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#call_fn as call;
            #[doc = #enqueue_doc_text]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#enqueue_fn as enqueue;
            #[doc = #schedule_doc]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#schedule_fn as schedule;
            #[doc = #enqueue_on_doc]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#enqueue_on_fn as enqueue_on;
            #[doc = #job_doc]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#job_fn as job;
            #[doc = #enqueue_many_doc]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#enqueue_many_fn as enqueue_many;
            #[doc = #enqueue_many_on_doc]
            #[doc(inline)]
            #[allow(unused_imports, deprecated)]
            #inner_vis use super::#enqueue_many_on_fn as enqueue_many_on;
            /// The command's registered name, which its jobs refer to it by.
            #[allow(dead_code)]
            #inner_vis const NAME: &str = super::#command_const.name;
        }
    }
}

/// The spans of the first and last tokens of `tokens`: on stable Rust a
/// proc macro cannot join spans, but an expression built from a token at
/// `first` to a token at `last` is reported as covering both.
fn span_range(tokens: impl ToTokens) -> (Span, Span) {
    let mut iter = tokens.into_token_stream().into_iter();
    let first = iter
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = iter.last().map_or(first, |token| token.span());
    (first, last)
}

/// `const _` items that fail to compile, on the argument's type, when an
/// argument type is not `Serialize + DeserializeOwned`.
fn serde_assertions(args: &[Arg<'_>], cfgs: &[&Attribute]) -> TokenStream {
    if args.is_empty() {
        return TokenStream::new();
    }
    let checks = args.iter().map(|arg| {
        let ty = arg.ty;
        quote_spanned!(ty.span()=> let _ = __outband_assert_arg::<#ty>;)
    });
    quote! {
        #(#cfgs)*
        const _: () = {
            fn __outband_assert_arg<
                T: ::outband::__private::serde::Serialize
                    + ::outband::__private::serde::de::DeserializeOwned,
            >() {
            }
            #(#checks)*
        };
    }
}

/// Whether the command returns a `Result` (`Result<T, E>`, `io::Result<T>`,
/// an alias named `Result`…): an `Err` then fails the attempt. The test is by
/// name, as a macro sees only tokens.
/// A `Duration` constant.
fn duration(duration: std::time::Duration) -> TokenStream {
    let (secs, nanos) = (duration.as_secs(), duration.subsec_nanos());
    quote!(::core::time::Duration::new(#secs, #nanos))
}

/// The type a stored result decodes as: the return type, or `T` of a
/// `Result<T, …>`, or `()` for none; `None` when it cannot be named from the
/// signature (an `impl Trait`, or a `Result` alias without arguments).
fn shown_result_type(output: &ReturnType) -> Option<TokenStream> {
    let ty = match output {
        ReturnType::Default => return Some(quote!(())),
        ReturnType::Type(_, ty) => &**ty,
    };
    if contains_impl(ty) {
        return None;
    }
    if !returns_result(ty) {
        return Some(quote!(#ty));
    }
    let mut ty = ty;
    while let Type::Group(syn::TypeGroup { elem, .. }) | Type::Paren(syn::TypeParen { elem, .. }) =
        ty
    {
        ty = elem;
    }
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        syn::GenericArgument::Type(ok) => Some(quote!(#ok)),
        _ => None,
    })
}

/// Whether `ty` names an `impl Trait` anywhere, which cannot be named again.
fn contains_impl(ty: &Type) -> bool {
    ty.to_token_stream()
        .to_string()
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .any(|word| word == "impl")
}

fn returns_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|segment| segment.ident == "Result")
        }
        Type::Group(group) => returns_result(&group.elem),
        Type::Paren(paren) => returns_result(&paren.elem),
        _ => false,
    }
}

/// The visibility, written inside the companion module, that reaches as far
/// as `vis` does written in its parent.
fn visibility_from_child(vis: &Visibility) -> TokenStream {
    match vis {
        Visibility::Public(_) => quote!(#vis),
        Visibility::Inherited => quote!(pub(super)),
        Visibility::Restricted(restricted) => {
            let path = &restricted.path;
            let Some(first) = path.segments.first() else {
                return quote!(#vis);
            };
            if first.ident == "self" {
                let rest = path.segments.iter().skip(1);
                if path.segments.len() == 1 {
                    quote!(pub(super))
                } else {
                    quote!(pub(in super #(::#rest)*))
                }
            } else if first.ident == "super" {
                quote!(pub(in super::#path))
            } else {
                // `pub(crate)`, `pub(in crate::…)`: absolute already.
                quote!(#vis)
            }
        }
    }
}

/// What the enqueueing function's docs add under the user's own: what
/// calling it does, and how that fails, under `# Errors` unless the user's
/// docs already have that heading (then it describes the body's errors,
/// which `call` returns).
fn enqueue_doc(ident: &Ident, docs: &[&Attribute]) -> TokenStream {
    let name = ident.unraw();
    let has_errors_heading = docs.iter().any(|attr| {
        let syn::Meta::NameValue(doc) = &attr.meta else {
            return false;
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) = &doc.value
        else {
            return false;
        };
        text.value().lines().any(|line| line.trim() == "# Errors")
    });
    let errors_heading = if has_errors_heading {
        ""
    } else {
        "# Errors\n\n"
    };
    let text = format!(
        "\n# Queue command\n\n\
         Calling this function does not run it: it enqueues a job on the default \
         backend and returns its [`JobHandle`](::outband::JobHandle) (the job's \
         id, and its value once it ran), and a consumer runs it later. \
         [`{name}::call`]({ident}::call) runs it inline instead, \
         [`{name}::schedule`]({ident}::schedule) enqueues it to run later, and \
         [`{name}::enqueue_on`]({ident}::enqueue_on) enqueues it on a given backend. \
         In eager mode the call runs inline.\n\n\
         {errors_heading}\
         Enqueueing fails with \
         [`Error::NoDefaultBackend`](::outband::Error::NoDefaultBackend) when no default \
         queue is set, [`Error::Codec`](::outband::Error::Codec) when the arguments \
         cannot be encoded, or the backend's error when it refuses the job.",
    );
    quote!(#[doc = #text])
}

#[cfg(test)]
mod tests {
    use super::{returns_result, visibility_from_child};
    use crate::valid::pretty;

    /// The visibility seen from the companion module, with `pub (x)` as `pub(x)`.
    fn from_child(vis: &str) -> String {
        let vis: syn::Visibility = syn::parse_str(vis).unwrap();
        pretty(visibility_from_child(&vis)).replace("pub (", "pub(")
    }

    #[test]
    fn visibility_reaches_as_far_from_the_companion_module() {
        assert_eq!(from_child(""), "pub(super)");
        assert_eq!(from_child("pub"), "pub");
        assert_eq!(from_child("pub(crate)"), "pub(crate)");
        assert_eq!(from_child("pub(self)"), "pub(super)");
        assert_eq!(from_child("pub(in self)"), "pub(super)");
        assert_eq!(from_child("pub(super)"), "pub(in super::super)");
        assert_eq!(
            from_child("pub(in super::super)"),
            "pub(in super::super::super)"
        );
        assert_eq!(from_child("pub(in crate::a::b)"), "pub(in crate::a::b)");
    }

    #[test]
    fn results_are_recognised_by_their_last_segment() {
        for ty in [
            "Result<(), E>",
            "std::io::Result<u8>",
            "anyhow::Result<()>",
            "(Result<u8, E>)",
        ] {
            assert!(returns_result(&syn::parse_str(ty).unwrap()), "{ty}");
        }
        for ty in [
            "u8",
            "Option<Result<u8, E>>",
            "Vec<u8>",
            "(u8, Result<u8, E>)",
        ] {
            assert!(!returns_result(&syn::parse_str(ty).unwrap()), "{ty}");
        }
    }
}
