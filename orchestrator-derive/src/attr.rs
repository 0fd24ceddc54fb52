//! Parsing of the arguments of `#[managed_operation(...)]`.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(operation_type);
    syn::custom_keyword!(total_steps);
    syn::custom_keyword!(description);
    syn::custom_keyword!(deadline);
    syn::custom_keyword!(grace_period);
    syn::custom_keyword!(labels);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(host_path);
    syn::custom_keyword!(resumable);
}

/// Every key, for the "unknown argument" message.
const KEYS: &str = "`operation_type`, `total_steps`, `description`, `deadline`, \
                    `grace_period`, `labels`, `skip`, `host_path`, `resumable` or `crate`";

/// The validated arguments of one `#[managed_operation(...)]` attribute.
pub(crate) struct Args {
    /// `operation_type = "..."`: the registry kind. Required.
    pub(crate) operation_type: LitStr,
    /// `total_steps = <expr>`: evaluated in each generated fn; `None` means `0`.
    pub(crate) total_steps: Option<Expr>,
    /// `description = "..."`: `None` means the fn name with `_` read as spaces.
    pub(crate) description: Option<LitStr>,
    /// `deadline = "1h"`: parsed at compile time.
    pub(crate) deadline: Option<Duration>,
    /// `grace_period = "5s"`: parsed at compile time.
    pub(crate) grace_period: Option<Duration>,
    /// `labels(team = "ml", ...)`, in the order written.
    pub(crate) labels: Vec<(String, LitStr)>,
    /// `skip(a, b)`: parameters not to record in `metadata.parameters`.
    pub(crate) skip: Vec<Ident>,
    /// `host_path = "/training/start"`: the start endpoint on a host service, for
    /// routing (feature `host`); makes `start_*` async.
    pub(crate) host_path: Option<LitStr>,
    /// `resumable`: also generate `register_<name>`, which registers the fn as the
    /// resumer of its kind.
    pub(crate) resumable: Option<Span>,
    /// `crate = path`: where the runtime is; `None` means `::orchestrator`.
    pub(crate) krate: Option<Path>,
}

/// The arguments as they are being parsed.
#[derive(Default)]
struct Slots {
    operation_type: Option<LitStr>,
    total_steps: Option<Expr>,
    description: Option<LitStr>,
    deadline: Option<Duration>,
    grace_period: Option<Duration>,
    labels: Option<Vec<(String, LitStr)>>,
    skip: Option<Vec<Ident>>,
    host_path: Option<LitStr>,
    resumable: Option<Span>,
    krate: Option<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // The whole argument list, to point at when `operation_type` is missing from it.
        let all = input.fork().parse::<TokenStream>()?;
        let mut slots = Slots::default();
        // Semantic errors (duplicate or unknown keys, wrong value types) are collected so
        // that one pass reports all of them; syntax errors stop parsing at once.
        let mut errors = Errors::default();

        while !input.is_empty() {
            slots.parse_one(input, &mut errors)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }

        errors.finish()?;
        let Some(operation_type) = slots.operation_type else {
            const MESSAGE: &str = "missing argument `operation_type`, e.g. \
                                   `#[managed_operation(operation_type = \"dummy\")]`";
            return Err(if all.is_empty() {
                syn::Error::new(Span::call_site(), MESSAGE)
            } else {
                syn::Error::new_spanned(all, MESSAGE)
            });
        };
        Ok(Self {
            operation_type,
            total_steps: slots.total_steps,
            description: slots.description,
            deadline: slots.deadline,
            grace_period: slots.grace_period,
            labels: slots.labels.unwrap_or_default(),
            skip: slots.skip.unwrap_or_default(),
            host_path: slots.host_path,
            resumable: slots.resumable,
            krate: slots.krate,
        })
    }
}

impl Slots {
    /// Parses one `key = value` (or `key(...)`) into its slot.
    fn parse_one(&mut self, input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<()> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::operation_type) {
            let key = input.parse::<kw::operation_type>()?;
            input.parse::<Token![=]>()?;
            let value = string_literal(input.parse()?, "operation_type", "dummy").and_then(|lit| {
                if lit.value().trim().is_empty() {
                    Err(syn::Error::new_spanned(
                        &lit,
                        "`operation_type` cannot be empty",
                    ))
                } else {
                    Ok(lit)
                }
            });
            set_once(
                &mut self.operation_type,
                &key,
                "operation_type",
                value,
                errors,
            );
        } else if lookahead.peek(kw::total_steps) {
            let key = input.parse::<kw::total_steps>()?;
            input.parse::<Token![=]>()?;
            let value = input.parse::<Expr>()?;
            set_once(
                &mut self.total_steps,
                &key,
                "total_steps",
                Ok(value),
                errors,
            );
        } else if lookahead.peek(kw::description) {
            let key = input.parse::<kw::description>()?;
            input.parse::<Token![=]>()?;
            let value = string_literal(input.parse()?, "description", "load a year of bars");
            set_once(&mut self.description, &key, "description", value, errors);
        } else if lookahead.peek(kw::deadline) {
            let key = input.parse::<kw::deadline>()?;
            input.parse::<Token![=]>()?;
            let value = duration(input.parse()?, "deadline", "1h 30m").and_then(|(lit, d)| {
                if d.is_zero() {
                    Err(syn::Error::new_spanned(
                        lit,
                        "`deadline` must be longer than zero",
                    ))
                } else {
                    Ok(d)
                }
            });
            set_once(&mut self.deadline, &key, "deadline", value, errors);
        } else if lookahead.peek(kw::grace_period) {
            let key = input.parse::<kw::grace_period>()?;
            input.parse::<Token![=]>()?;
            let value = duration(input.parse()?, "grace_period", "5s").map(|(_, d)| d);
            set_once(&mut self.grace_period, &key, "grace_period", value, errors);
        } else if lookahead.peek(kw::labels) {
            let key = input.parse::<kw::labels>()?;
            let value = list_or_skip(input, &key, "labels(team = \"ml\")")
                .and_then(|()| labels(input, errors));
            set_once(&mut self.labels, &key, "labels", value, errors);
        } else if lookahead.peek(kw::skip) {
            let key = input.parse::<kw::skip>()?;
            let value = list_or_skip(input, &key, "skip(password)").and_then(|()| skip(input));
            set_once(&mut self.skip, &key, "skip", value, errors);
        } else if lookahead.peek(kw::host_path) {
            let key = input.parse::<kw::host_path>()?;
            input.parse::<Token![=]>()?;
            let value = string_literal(input.parse()?, "host_path", "/training/start").and_then(
                |lit| {
                    if lit.value().starts_with('/') {
                        Ok(lit)
                    } else {
                        Err(syn::Error::new_spanned(
                            &lit,
                            "`host_path` is the host's start endpoint under its API prefix and starts with `/`, e.g. \"/training/start\"",
                        ))
                    }
                },
            );
            set_once(&mut self.host_path, &key, "host_path", value, errors);
        } else if lookahead.peek(kw::resumable) {
            let key = input.parse::<kw::resumable>()?;
            set_once(&mut self.resumable, &key, "resumable", Ok(key.span), errors);
        } else if lookahead.peek(Token![crate]) {
            let key = input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let value = input.parse::<Path>().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "`crate` must be a path, e.g. `crate = ::my_orchestrator`",
                )
            })?;
            set_once(&mut self.krate, &key, "crate", Ok(value), errors);
        } else if input.peek(Ident::peek_any) {
            let key = input.call(Ident::parse_any)?;
            errors.push(syn::Error::new_spanned(
                &key,
                format!("unknown argument `{key}`; expected {KEYS}"),
            ));
            // Skip its value, so that the arguments after it are still checked.
            if input.parse::<Option<Token![=]>>()?.is_some() {
                input.parse::<Expr>()?;
            } else if input.peek(syn::token::Paren) {
                input.parse::<proc_macro2::Group>()?;
            }
        } else {
            return Err(lookahead.error());
        }
        Ok(())
    }
}

/// `value` as a string literal, or an error spanned on it.
fn string_literal(value: Expr, key: &str, example: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` must be a string literal, e.g. `{key} = \"{example}\"`"),
        )),
    }
}

/// `value` as a humantime duration literal (`"90s"`, `"1h 30m"`), parsed now.
fn duration(value: Expr, key: &str, example: &str) -> syn::Result<(LitStr, Duration)> {
    let lit = string_literal(value, key, example)?;
    match humantime::parse_duration(&lit.value()) {
        Ok(duration) => Ok((lit, duration)),
        Err(error) => Err(syn::Error::new_spanned(
            &lit,
            format!(
                "`{key}` is not a duration ({error}); write e.g. `{key} = \"{example}\"` \
                 (units: ms, s, m, h, d)"
            ),
        )),
    }
}

/// `Ok` when a parenthesised list follows; otherwise skips a `= value` and returns an
/// error on `key`, so that the arguments after it are still checked.
fn list_or_skip(
    input: ParseStream<'_>,
    key: &dyn quote::ToTokens,
    example: &str,
) -> syn::Result<()> {
    if input.peek(syn::token::Paren) {
        return Ok(());
    }
    if input.parse::<Option<Token![=]>>()?.is_some() {
        input.parse::<Expr>()?;
    }
    let name = key.to_token_stream();
    Err(syn::Error::new_spanned(
        key,
        format!("`{name}` takes a list, e.g. `{example}`"),
    ))
}

/// `(key = "value", ...)`: keys are names or string literals (for keys like
/// `app.kubernetes.io/name`); a repeated key is an error on its second use.
fn labels(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Vec<(String, LitStr)>> {
    let content;
    syn::parenthesized!(content in input);
    let mut labels: Vec<(String, LitStr)> = Vec::new();
    while !content.is_empty() {
        let (key, key_span) = if content.peek(LitStr) {
            let lit = content.parse::<LitStr>()?;
            (lit.value(), lit.span())
        } else {
            let ident = content.call(Ident::parse_any).map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "expected a label, e.g. `labels(team = \"ml\")`",
                )
            })?;
            (ident.unraw().to_string(), ident.span())
        };
        content.parse::<Token![=]>()?;
        let value = match content.parse::<Expr>()? {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Ok(lit),
            other => Err(syn::Error::new_spanned(
                other,
                format!("a label value must be a string literal, e.g. `{key} = \"gpu\"`"),
            )),
        };
        if key.is_empty() {
            errors.push(syn::Error::new(key_span, "a label key cannot be empty"));
        } else if labels.iter().any(|(k, _)| *k == key) {
            errors.push(syn::Error::new(
                key_span,
                format!("duplicate label `{key}`"),
            ));
        } else if let Some(value) = errors.check(value) {
            labels.push((key, value));
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(labels)
}

/// `(a, b)`: parameter names; checked against the fn's parameters later.
fn skip(input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let names = Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
    Ok(names.into_iter().collect())
}

/// Stores the value of `key` unless it was given before, which is an error on `key`.
fn set_once<T>(
    slot: &mut Option<T>,
    key: &dyn quote::ToTokens,
    name: &str,
    value: syn::Result<T>,
    errors: &mut Errors,
) {
    if slot.is_some() {
        errors.push(syn::Error::new_spanned(
            key,
            format!("duplicate argument `{name}`"),
        ));
        return;
    }
    match value {
        Ok(value) => *slot = Some(value),
        Err(error) => errors.push(error),
    }
}

/// Collects errors into one [`syn::Error`] with [`syn::Error::combine`].
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The value of `result`, or `None` after recording its error.
    pub(crate) fn check<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// `Err` with every collected error, if there was any.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
