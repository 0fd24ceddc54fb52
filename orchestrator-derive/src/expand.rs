//! The entry point: parse, validate (see [`crate::check`]), generate (see
//! [`crate::generate`]), and on error fall back to the original item.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::attr::{Args, Errors};
use crate::check::{Operation, OperationFn};

/// Expands `#[managed_operation(args)] item`.
///
/// On any error the original item is emitted unchanged next to the errors, so the user
/// sees the macro's message instead of a cascade of "function not found" errors. The
/// fn's body is not parsed: a syntax error in it is the compiler's to report.
pub(crate) fn managed_operation(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(item_fn) = syn::parse2::<OperationFn>(item.clone()) else {
        let error = syn::Error::new(
            Span::call_site(),
            "`#[managed_operation]` must be placed on an `async fn` with a body",
        );
        return fallback(item, error);
    };
    let mut errors = Errors::default();
    let args = errors.check(syn::parse2::<Args>(args));
    let operation = errors.check(Operation::analyse(&item_fn, args.as_ref()));
    if let (Some(args), Some(operation)) = (&args, &operation) {
        if let (Some(path), None) = (&args.host_path, operation.receiver) {
            errors.push(syn::Error::new_spanned(
                path,
                "`host_path` routes through the service's host: it needs a `&self` method \
                 of a type implementing `ServiceOrchestrator`",
            ));
        }
    }
    match (args, operation, errors.finish()) {
        (Some(args), Some(operation), Ok(())) => {
            let generated = operation.generate(&args);
            quote! {
                #item
                #generated
            }
        }
        (_, _, Err(error)) => fallback(item, error),
        _ => unreachable!("an analysis step failed without recording its error"),
    }
}

/// The original item as written, plus `error`.
fn fallback(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut tokens = error.into_compile_error();
    tokens.extend(item);
    tokens
}
