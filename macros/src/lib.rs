//! The `#[queue_command]` attribute of [outband]: calling the function enqueues
//! a job that a consumer runs later.
//!
//! Use it through the `outband` crate, as `outband::queue_command`; the code it
//! generates names `::outband` paths and works only with `outband` as a
//! dependency. Its full documentation lives there.
//!
//! ```
//! use outband::{MemoryQueue, queue_command};
//! use std::sync::Arc;
//!
//! /// Resizes an image: the work a web handler hands to a consumer.
//! #[queue_command(queue = "images", retries = 2)]
//! fn resize(path: String, width: u32) -> Result<(), String> {
//!     println!("resizing {path} to {width} px");
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), outband::Error> {
//! let backend = Arc::new(MemoryQueue::new());
//! // calling it enqueues on the default backend and returns a JobHandle
//! outband::set_default_backend(backend.clone())?;
//! let id = resize("cat.png".into(), 640)?.id();
//! // `resize::call` runs the body now; `resize::NAME` is the registered name
//! assert_eq!(resize::call("dog.png".into(), 320), Ok(()));
//! let job = outband::BaseQueue::job(&*backend, id)?.expect("stored");
//! assert_eq!((job.command.as_str(), job.queue.as_str()), (resize::NAME, "images"));
//! # Ok(()) }
//! ```
//!
//! [outband]: https://docs.rs/outband

mod ast;
mod attr;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;

/// Turns a function into a queue command: calling it enqueues a job, and a
/// consumer runs the body later.
///
/// ```ignore
/// use outband::queue_command;
///
/// /// Sends the welcome mail.
/// #[queue_command(queue = "emails", retries = 5, key = user_id)]
/// pub fn send_welcome(user_id: u64, template: String) -> Result<(), MailError> {
///     /* … */
/// }
///
/// let job = send_welcome(7, "hi".into())?;          // enqueues; returns a JobHandle<()>
/// send_welcome::call(7, "hi".into())?;              // runs the body inline, now
/// send_welcome::schedule(Duration::from_secs(300), 7, "hi".into())?;
/// send_welcome::enqueue_on(&backend, 7, "hi".into())?; // onto a given backend
/// assert_eq!(send_welcome::NAME, "my_app::send_welcome");
/// ```
///
/// # Options
///
/// All optional; `#[queue_command]` alone takes every default.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `name = "…"` | `module_path::fn_name` | The name the command is registered under and jobs refer to it by. Set it to keep old jobs running after moving or renaming the function. |
/// | `queue = "…"` | `"default"` | The queue its jobs go to. |
/// | `retries = N` | `3` | Failed attempts that are retried: a job gets `N + 1` attempts before it goes to `dead`. |
/// | `backoff = "…"` | the consumer's `RetryPolicy` | The delay between attempts: `"exponential(BASE, MAX)"` (doubling from `BASE` up to `MAX`, with the consumer's jitter), `"fixed(DELAY)"` or `"none"`; durations like `500ms`, `30s`, `5m`, `1h`. See `outband::Backoff`. |
/// | `timeout = "…"` | none | How long one attempt may run, like `30s` or `5m`: an async command's future is dropped then, a sync command's `JobContext` turns cancelled and, past the consumer's grace, its attempt is recorded as timed out. An enqueue may set its own (`NewJob::timeout`, `Enqueue::timeout`). See `outband::Job::timeout` for exactly what each form guarantees. |
/// | `key = arg` | none | An argument whose value (through `ToString`) is the job's ordering key: jobs with the same key never run at the same time, and run in enqueue order. |
/// | `priority = N` | `0` | An `i16`; higher runs first. |
/// | `unique`, `unique(…)` | none | At most one job per unique key: a call whose key a job still holds stores nothing and gives that job's handle, with `is_duplicate()` true (`enqueue_on` gives its id). The key is the command's name and all the arguments (`unique`), one argument's value through `ToString` (`unique(by = arg)`), or a constant (`unique(key = "…")`: one job of the command at a time). The job holds it while `pending` or `running` (`until = "finished"`, the default), only while `pending` (`until = "started"`), or also for a time after it is `done` (`window = "1h"`); a `dead` or `cancelled` job gives it up. The backend enforces it atomically, across producers. A typed batch of a unique command is refused (each goes alone), and eager mode runs every call. See `outband::BaseQueue::enqueue_unique`. |
/// | `concurrency = N`, `concurrency(max = N, by = arg)` | none | At most `N` of the command's jobs run at once, across every consumer process and thread (`by = arg`: at most `N` per value of that argument, through `ToString`). The backend enforces it in its claim: a job over the limit stays `pending` and is passed over, so jobs after it (of other commands, or other values) still start, and it starts once a running one leaves `running` — done, failed, cancelled, or recovered when its consumer died. A limit of 0 is a compile error. A backend that does not enforce limits (`Capabilities::concurrency_limits`) refuses the job. See `outband::Concurrency`. |
/// | `rate = "N/period"`, `rate(limit = "N/period", by = arg)` | none | At most `N` of the command's jobs (per value of `arg`) start per period, across every consumer: `s`, `m`, `h`, `d`, or a duration like `500ms`. Starts are spaced evenly, one every `period / N`, after a burst of up to a tenth of `N` (at least 1); every start counts, retries included. A job whose turn has not come stays `pending` and is passed over, and a consumer's wait ends when it may start. A rate of 0 is a compile error. See `outband::RateLimit`. |
///
/// # Async commands
///
/// An `async fn` takes every option a plain `fn` takes and generates the
/// same items. Its future must be `Send`: a consumer with outband's
/// `runtime` feature runs it on its async runtime, up to `--concurrency`
/// jobs at once apart from its threads, and drops it when a stop's grace
/// period ends. A plain call (`f(…)`) still enqueues; eager mode drives the
/// future to its end on the calling thread.
///
/// # The job's context
///
/// One parameter may be an `outband::JobContext`, taken as `&JobContext` or
/// `JobContext` (named by its last path segment), anywhere in the list, in
/// a plain or an async command. It is not an argument of the job: the
/// enqueueing functions leave it out and nothing of it is stored; the
/// consumer fills it in when the job runs, with the job's id, queue,
/// ordering key and attempt, its cancellation, progress reports and an
/// explicit heartbeat. `call` takes it like the other parameters
/// (`JobContext::detached()` makes one for a test). A periodic command may
/// take it too.
///
/// ```ignore
/// #[queue_command(queue = "imports")]
/// fn import(ctx: &JobContext, file: String) -> Result<(), ImportError> {
///     for (i, chunk) in chunks(&file).enumerate() {
///         if ctx.is_cancelled() { return Ok(()); }
///         load(chunk)?;
///         ctx.progress(i as f32 / total as f32, format!("chunk {i}"));
///     }
///     Ok(())
/// }
///
/// import("rows.csv".into())?; // the context is not an argument
/// ```
///
/// # What it generates
///
/// For `fn send_welcome(user_id: u64, template: String) -> R`:
///
/// - `fn send_welcome(user_id: u64, template: String) -> Result<JobHandle<T>, outband::Error>`
///   with the function's own visibility and docs: encodes the arguments as
///   the tuple `(user_id, template)` and enqueues a job on the default backend
///   (`outband::set_default_backend` or `OUTBAND_URL`), or runs the command
///   inline in eager mode. The `outband::JobHandle<T>` holds the job's id
///   (`id()`) and waits for the value it returns: `T` of `-> T` or
///   `-> Result<T, E>` (see `handle` below). The return type must be
///   nameable: an `impl Trait` there is a compile error.
/// - `mod send_welcome` (a function and a module may share a name), with the
///   same visibility:
///   - `call(user_id, template) -> R`: the original body, run inline, with
///     the function's other attributes (for an `async fn`, its future);
///   - `enqueue(user_id, template) -> outband::Enqueue<T>`: for async code;
///     `.await` it to enqueue on the default backend without blocking the
///     runtime (`.at(when)` schedules it, `.on(&backend)` picks another
///     backend) and get the `JobHandle<T>`, which reads that backend;
///   - `schedule(at_or_after, user_id, template)`: enqueues to run at or
///     after a `When`, a `SystemTime` or a `Duration` from now, returning
///     the `JobHandle<T>`;
///   - `enqueue_on(&backend, user_id, template)`: enqueues on the given
///     backend (`&(impl BaseQueue + ?Sized)`, so `&dyn BaseQueue` too) instead
///     of the default one, returning the `JobId` (a borrowed backend cannot
///     be kept by a handle: `handle(id).on(&arc)` makes one);
///   - `job(user_id, template) -> Result<NewJob, outband::Error>`: the job a
///     call would enqueue, with the command's options, not stored: for a
///     backend's own calls, such as `outband-diesel`'s `enqueue_in`, which
///     enqueues inside the caller's database transaction;
///   - `enqueue_many(items)` and `enqueue_many_on(&backend, items)`: one job
///     per item (`()` for a command without arguments, the argument itself
///     for one, a tuple of them for more) in one backend call, all or
///     nothing, returning the ids in order;
///   - `handle(id) -> outband::JobHandle<T>`: the typed handle of a job of
///     this command, for an id any of the above gave; its `wait(timeout)`
///     (or `result(timeout).await`) gives the value the command returned
///     (`T` of `-> T` or `-> Result<T, E>`) or an `outband::JobError`
///     (dead, cancelled, not finished in time, gone…);
///   - `const NAME: &str`: the registered name.
///
///   Each reaches as far as the function does: a private command's
///   companions are usable in its module and that module's children.
/// - A registration with `inventory`, found by `outband::Registry::global()`
///   in whichever binary links this code (see the linking rule in outband's
///   registry docs). Its runner decodes the argument tuple, calls the body and
///   encodes the return value: when the return type's last path segment is
///   `Result` (`Result<T, E>`, `io::Result<T>`, any alias named `Result`), an
///   `Err` fails the attempt with the error's `Display` text and `Ok(value)`
///   is stored as the job's result; any other return type is stored as the
///   result itself (nothing for `()`). An error of type `outband::Fail` says
///   what the failure means: `Fail::fatal` sends the job to `dead` at once,
///   `Fail::retry_after` retries it after the delay it gives.
/// - Hidden items named `__outband_*` / `__OUTBAND_*` that the above point to.
///
/// Arguments may use patterns (`(a, b): (u8, u8)`, `_: u8`, `mut x: u32`);
/// the generated functions take them as plain arguments.
///
/// The function's attributes: `#[cfg]` applies to everything generated;
/// doc comments document both the enqueueing function (followed by a section
/// on what calling it does) and `call`; `#[deprecated]` marks every function
/// a user calls; any other attribute (`#[inline]`, `#[must_use]`, lint
/// levels, other attribute macros) stays with the body, on `call`.
///
/// # Requirements
///
/// The arguments are encoded when the function is called and decoded by a
/// consumer that knows only the command's name, so these are compile errors:
///
/// - an argument type that is not `serde::Serialize + serde::de::DeserializeOwned`
///   (the return type must be `Serialize`, and a `Result`'s error `Display`);
/// - a borrowed argument (`&str`, `&[u8]`, `Cow<'a, str>`): take an owned
///   type (`String`, `Vec<u8>`);
/// - generic parameters, a `where` clause or `impl Trait` arguments;
/// - a `self` receiver: it must be a free function;
/// - a non-`Send` future in an `async fn` (consumers run it on a
///   multi-threaded runtime);
/// - `const fn`, `unsafe fn`, an `extern` ABI, variadics, and
///   `#[cfg]` on an argument;
/// - unknown, repeated or ill-typed options (a `timeout` that does not
///   read as a duration, or is under a millisecond; a `unique` window
///   likewise, or a `unique` with both `by` and `key`; a `concurrency` limit
///   that is not a whole number from 1 up; a `rate` that does not read as
///   `N/period` with `N` from 1 up), and a `key`, or the `by = …` of
///   `unique`, `concurrency` or `rate`, that names no argument;
/// - two `JobContext` parameters, or a `&mut JobContext`.
///
/// The function must be an item of a module, not of a function body or an
/// `impl` block: its companion module refers to it through `super::`.
/// On any error the function is left exactly as written, so the macro's own
/// errors are the only ones.
#[proc_macro_attribute]
pub fn queue_command(args: TokenStream, input: TokenStream) -> TokenStream {
    queue_command_impl(args.into(), input.into()).into()
}

/// Parse, validate, expand; on any error, the item as written plus the errors.
fn queue_command_impl(
    args: proc_macro2::TokenStream,
    input: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    match queue_command_expand(args, input, &mut Errors::default()) {
        Ok((expanded, _)) | Err(expanded) => expanded,
    }
}

/// The expansion and the function, or the fallback with every error found
/// (including those already in `errors`).
fn queue_command_expand(
    args: proc_macro2::TokenStream,
    input: proc_macro2::TokenStream,
    errors: &mut Errors,
) -> Result<(proc_macro2::TokenStream, syn::ItemFn), proc_macro2::TokenStream> {
    let function = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(syn::Item::Fn(function)) => function,
        Ok(_) => {
            errors.push(syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[queue_command] goes on a free function, like `fn send_welcome(user_id: u64) { … }`",
            ));
            return Err(fallback::expand(
                input,
                errors.0.as_ref().expect("pushed above"),
            ));
        }
        Err(error) => {
            errors.push(error);
            return Err(fallback::expand(
                input,
                errors.0.as_ref().expect("pushed above"),
            ));
        }
    };
    let options = attr::parse(args, errors);
    valid::check_function(&function, errors);
    let args = ast::Arg::all(&function);
    valid::check_key(&function, &options, &args, errors);
    match &errors.0 {
        Some(error) => Err(fallback::expand(&function, error)),
        None => {
            let expanded = expand::expand(&ast::Command {
                function: &function,
                options,
                args,
                context: ast::Context::find(&function),
            });
            Ok((expanded, function))
        }
    }
}

/// Makes a function a command that the consumer enqueues on a cron schedule.
///
/// ```ignore
/// #[periodic_command(cron = "*/5 * * * *")]
/// fn refresh_cache() -> Result<(), String> {
///     Ok(())
/// }
/// ```
///
/// `cron` takes the five standard fields (minute, hour, day of month, month,
/// day of week), or six with seconds first; it is parsed when the consumer
/// starts. Every other option is `#[queue_command]`'s, and the function is a
/// queue command too: calling it enqueues one run now, `::call` runs it
/// inline. It takes no arguments.
///
/// Each tick is enqueued by exactly one consumer, however many run: the tick
/// is claimed in the backend first. A consumer that was down does not enqueue
/// the ticks it missed, only the latest one. `-n` turns the scheduler off.
#[proc_macro_attribute]
pub fn periodic_command(args: TokenStream, input: TokenStream) -> TokenStream {
    periodic_command_impl(args.into(), input.into()).into()
}

fn periodic_command_impl(
    args: proc_macro2::TokenStream,
    input: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    use syn::parse::Parser;
    use syn::punctuated::Punctuated;

    let mut errors = Errors::default();
    let metas = match Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(error) => return fallback::expand(input, &error),
    };
    let mut cron = None;
    let mut rest = Punctuated::<syn::Meta, syn::Token![,]>::new();
    for meta in metas {
        if !meta.path().is_ident("cron") {
            rest.push(meta);
            continue;
        }
        match &meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(expr),
                        ..
                    }),
                ..
            }) if cron.is_none() => cron = Some(expr.clone()),
            syn::Meta::NameValue(_) if cron.is_some() => {
                errors.push(syn::Error::new_spanned(&meta, "`cron` is given twice"));
            }
            _ => errors.push(syn::Error::new_spanned(
                &meta,
                "expected `cron = \"…\"`, a cron expression such as `cron = \"*/5 * * * *\"`",
            )),
        }
    }
    if cron.is_none() && errors.0.is_none() {
        errors.push(syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[periodic_command] needs a schedule: `#[periodic_command(cron = \"*/5 * * * *\")]`",
        ));
    }
    if let Ok(syn::Item::Fn(function)) = syn::parse2::<syn::Item>(input.clone())
        && function.sig.inputs.iter().any(|input| match input {
            syn::FnArg::Typed(typed) => ast::context_type(&typed.ty).is_none(),
            syn::FnArg::Receiver(_) => true,
        })
    {
        errors.push(syn::Error::new_spanned(
            &function.sig.inputs,
            "a periodic command takes no arguments (a `JobContext` apart): the consumer's scheduler enqueues its runs",
        ));
    }
    let (expanded, function) = match queue_command_expand(quote::quote!(#rest), input, &mut errors)
    {
        Ok(done) => done,
        Err(fallback) => return fallback,
    };
    let ident = &function.sig.ident;
    let command = quote::format_ident!("__OUTBAND_COMMAND_{}", ident);
    let cfgs = function.attrs.iter().filter(|a| a.path().is_ident("cfg"));
    quote::quote! {
        #expanded

        #(#cfgs)*
        ::outband::__private::inventory::submit! {
            ::outband::__private::Periodic { command: &#command, cron: #cron }
        }
    }
}

/// Errors found so far, combined so that the user sees all of them at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }
}
