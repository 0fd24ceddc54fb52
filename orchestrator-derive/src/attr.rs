//! Parsing of the arguments of `#[managed_operation(...)]`.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

mod kw {
    syn::custom_keyword!(operation_type);
    syn::custom_keyword!(total_steps);
    syn::custom_keyword!(description);
}

/// The validated arguments of one `#[managed_operation(...)]` attribute.
pub(crate) struct Args {
    /// `operation_type = "..."`: the registry kind. Required.
    pub(crate) operation_type: LitStr,
    /// `total_steps = <expr>`: evaluated in each generated fn; `None` means `0`.
    pub(crate) total_steps: Option<Expr>,
    /// `description = "..."`: `None` means the fn name with `_` read as spaces.
    pub(crate) description: Option<LitStr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // The whole argument list, to point at when `operation_type` is missing from it.
        let all = input.fork().parse::<TokenStream>()?;
        let mut operation_type = None;
        let mut total_steps = None;
        let mut description = None;
        // Semantic errors (duplicate or unknown keys, wrong value types) are collected so
        // that one pass reports all of them; syntax errors stop parsing at once.
        let mut errors = Errors::default();

        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::operation_type) {
                let key = input.parse::<kw::operation_type>()?;
                input.parse::<Token![=]>()?;
                let value =
                    string_literal(input.parse()?, "operation_type", "dummy").and_then(|lit| {
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
                    &mut operation_type,
                    &key,
                    "operation_type",
                    value,
                    &mut errors,
                );
            } else if lookahead.peek(kw::total_steps) {
                let key = input.parse::<kw::total_steps>()?;
                input.parse::<Token![=]>()?;
                let value = input.parse::<Expr>()?;
                set_once(
                    &mut total_steps,
                    &key,
                    "total_steps",
                    Ok(value),
                    &mut errors,
                );
            } else if lookahead.peek(kw::description) {
                let key = input.parse::<kw::description>()?;
                input.parse::<Token![=]>()?;
                let value = string_literal(input.parse()?, "description", "load a year of bars");
                set_once(&mut description, &key, "description", value, &mut errors);
            } else if input.peek(Ident::peek_any) {
                let key = input.call(Ident::parse_any)?;
                errors.push(syn::Error::new_spanned(
                    &key,
                    format!(
                        "unknown argument `{key}`; expected `operation_type`, `total_steps` or `description`"
                    ),
                ));
                // Skip its value, so that the arguments after it are still checked.
                if input.parse::<Option<Token![=]>>()?.is_some() {
                    input.parse::<Expr>()?;
                }
            } else {
                return Err(lookahead.error());
            }

            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }

        errors.finish()?;
        let Some(operation_type) = operation_type else {
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
            total_steps,
            description,
        })
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
