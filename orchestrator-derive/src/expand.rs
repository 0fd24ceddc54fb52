//! Validation of the annotated fn and generation of `start_*`, `run_*` and `run_*_sync`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemFn, Pat, PatIdent, PathArguments, Receiver,
    ReturnType, Signature, Type, TypePath,
};

use crate::attr::{Args, Errors};

/// Expands `#[managed_operation(args)] item`.
///
/// On any error the original item is emitted unchanged next to the errors, so the user
/// sees the macro's message instead of a cascade of "function not found" errors.
pub(crate) fn managed_operation(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(item_fn) = syn::parse2::<ItemFn>(item.clone()) else {
        let error = syn::Error::new(
            Span::call_site(),
            "`#[managed_operation]` must be placed on an `async fn` with a body",
        );
        return fallback(item, error);
    };
    let mut errors = Errors::default();
    let args = errors.check(syn::parse2::<Args>(args));
    let operation = errors.check(Operation::analyse(&item_fn));
    match (args, operation, errors.finish()) {
        (Some(args), Some(operation), Ok(())) => {
            let generated = operation.generate(&args);
            quote! {
                #item_fn
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

/// What the generated fns need to know about the annotated fn, once it is validated.
struct Operation<'a> {
    item: &'a ItemFn,
    /// `&self`, or `None` for a free fn (which gets an `ops: &Operations` parameter).
    receiver: Option<&'a Receiver>,
    /// The typed parameters in order; `None` stands for the `OperationContext`.
    params: Vec<Option<Param<'a>>>,
    /// `T` and `E` of the declared `Result<T, E>`.
    ok: &'a Type,
    err: &'a Type,
}

/// A parameter of the annotated fn other than the context.
struct Param<'a> {
    ident: &'a Ident,
    ty: &'a Type,
}

impl<'a> Operation<'a> {
    /// Validates `item`, reporting every problem found (not just the first).
    fn analyse(item: &'a ItemFn) -> syn::Result<Self> {
        let sig = &item.sig;
        let mut errors = Errors::default();
        errors.check(check_async(sig));
        errors.check(check_safe(sig));
        errors.check(check_generics(sig));
        let receiver = errors.check(check_receiver(sig));
        let params = errors.check(check_params(sig, sig.receiver().is_none()));
        let result = errors.check(check_output(sig));
        errors.finish()?;
        let (Some(receiver), Some(params), Some((ok, err))) = (receiver, params, result) else {
            unreachable!("a check failed without recording its error")
        };
        Ok(Self {
            item,
            receiver,
            params,
            ok,
            err,
        })
    }
}

/// The fn must be `async`: the generated fns await (or spawn) the future it returns.
fn check_async(sig: &Signature) -> syn::Result<()> {
    match sig.asyncness {
        Some(_) => Ok(()),
        None => Err(syn::Error::new_spanned(
            sig.fn_token,
            "`#[managed_operation]` requires an `async fn`",
        )),
    }
}

/// The generated fns call the original without an `unsafe` block.
fn check_safe(sig: &Signature) -> syn::Result<()> {
    match (&sig.unsafety, &sig.abi) {
        (Some(unsafety), _) => Err(syn::Error::new_spanned(
            unsafety,
            "an `unsafe fn` cannot be a managed operation",
        )),
        (None, Some(abi)) => Err(syn::Error::new_spanned(
            abi,
            "an `extern` fn cannot be a managed operation",
        )),
        (None, None) => Ok(()),
    }
}

/// Type and lifetime parameters would have to be threaded through a `'static` task.
fn check_generics(sig: &Signature) -> syn::Result<()> {
    const MESSAGE: &str = "generic managed operations are not supported";
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&sig.generics, MESSAGE));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        return Err(syn::Error::new_spanned(where_clause, MESSAGE));
    }
    Ok(())
}

/// Only `&self` (or no receiver): the generated `start_*` clones the service into the
/// spawned task, which a by-value or `&mut` receiver cannot express.
fn check_receiver(sig: &Signature) -> syn::Result<Option<&Receiver>> {
    let Some(receiver) = sig.receiver() else {
        return Ok(None);
    };
    let message = match (
        &receiver.reference,
        &receiver.mutability,
        &receiver.colon_token,
    ) {
        (Some(_), None, None) => return Ok(Some(receiver)),
        (Some(_), Some(_), None) => {
            "`&mut self` is not supported; take `&self` (the operation runs in the background, \
             next to other calls on the service)"
        }
        (None, _, None) => {
            "`self` by value is not supported; take `&self` (the service is cloned into the \
             spawned task)"
        }
        (_, _, Some(_)) => "only a `&self` receiver is supported",
    };
    Err(syn::Error::new_spanned(receiver, message))
}

/// Exactly one `OperationContext` parameter taken by value; every other parameter a plain
/// name with an owned type, since the arguments are moved into a `'static` task.
fn check_params(sig: &Signature, free_fn: bool) -> syn::Result<Vec<Option<Param<'_>>>> {
    let mut errors = Errors::default();
    let mut params = Vec::new();
    let mut context = None;
    for pat_type in sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(pat_type) => Some(pat_type),
        FnArg::Receiver(_) => None,
    }) {
        if matches!(&*pat_type.ty, Type::Reference(reference) if is_context(&reference.elem)) {
            // Counted as the context, so there is no second "needs a context" error.
            errors.push(syn::Error::new_spanned(
                &pat_type.ty,
                "take the `OperationContext` by value: `ctx: OperationContext`",
            ));
            context = Some(&pat_type.ty);
            continue;
        }
        if is_context(&pat_type.ty) {
            if context.is_some() {
                errors.push(syn::Error::new_spanned(
                    &pat_type.ty,
                    "a managed operation takes exactly one `OperationContext` parameter",
                ));
            }
            context = Some(&pat_type.ty);
            params.push(None);
            continue;
        }
        let ty = errors.check(check_param_type(&pat_type.ty));
        let ident = errors.check(check_param_pat(&pat_type.pat, free_fn));
        if let (Some(ident), Some(ty)) = (ident, ty) {
            params.push(Some(Param { ident, ty }));
        }
    }
    if context.is_none() {
        errors.push(syn::Error::new_spanned(
            &sig.ident,
            "a managed operation needs an `OperationContext` parameter, e.g. `ctx: OperationContext`",
        ));
    }
    errors.finish()?;
    Ok(params)
}

/// `true` for a path type whose last segment is `OperationContext`.
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(TypePath { qself: None, path }) => path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "OperationContext"),
        Type::Group(group) => is_context(&group.elem),
        Type::Paren(paren) => is_context(&paren.elem),
        _ => false,
    }
}

/// The type of a non-context parameter must be owned and concrete.
fn check_param_type(ty: &Type) -> syn::Result<&Type> {
    match ty {
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            "a managed operation cannot take references: its arguments are moved into a \
             `'static` task; take an owned type instead",
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            "generic managed operations are not supported",
        )),
        _ => Ok(ty),
    }
}

/// The pattern of a non-context parameter must be a plain name: the generated fns take
/// the parameter under that name and pass it on.
fn check_param_pat(pat: &Pat, free_fn: bool) -> syn::Result<&Ident> {
    match pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            ..
        }) => {
            if free_fn && ident == "ops" {
                return Err(syn::Error::new_spanned(
                    ident,
                    "the name `ops` is taken by the registry parameter of the generated \
                     `start_*` and `run_*` fns; rename this parameter",
                ));
            }
            Ok(ident)
        }
        _ => Err(syn::Error::new_spanned(
            pat,
            "a managed operation's parameters must be plain names (e.g. `symbol: String`): \
             the generated fns pass them on by name",
        )),
    }
}

/// The fn must return `Result<T, E>`; returns `T` and `E`.
fn check_output(sig: &Signature) -> syn::Result<(&Type, &Type)> {
    const MESSAGE: &str = "a managed operation must return `Result<T, E>`";
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => return Err(syn::Error::new_spanned(&sig.ident, MESSAGE)),
    };
    result_args(ty).ok_or_else(|| syn::Error::new_spanned(ty, MESSAGE))
}

/// `T` and `E` of a path type whose last segment is `Result<T, E>`.
fn result_args(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(TypePath { qself: None, path }) = ty else {
        return None;
    };
    let segment = path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    if segment.ident != "Result" || args.args.len() != 2 {
        return None;
    }
    match (&args.args[0], &args.args[1]) {
        (GenericArgument::Type(ok), GenericArgument::Type(err)) => Some((ok, err)),
        _ => None,
    }
}

impl Operation<'_> {
    /// `start_*`, `run_*` and `run_*_sync`, to be emitted after the original fn.
    fn generate(&self, args: &Args) -> TokenStream {
        let sig = &self.item.sig;
        let name = &sig.ident;
        let vis = &self.item.vis;
        let cfgs = self.item.attrs.iter().filter(|attr| is_cfg(attr));
        let cfgs = quote!(#(#cfgs)*);

        let start = format_ident!("start_{}", name, span = name.span());
        let run = format_ident!("run_{}", name, span = name.span());
        let run_sync = format_ident!("run_{}_sync", name, span = name.span());

        let first_param = match self.receiver {
            Some(receiver) => quote!(#receiver),
            None => quote!(ops: &::orchestrator::__private::Operations),
        };
        let params = self
            .params
            .iter()
            .flatten()
            .map(|Param { ident, ty }| quote!(#ident: #ty));
        let params = quote!(#first_param, #(#params),*);
        let spec = self.spec(args);
        let (ok, err) = (self.ok, self.err);
        let outcome = quote!(::orchestrator::__private::Outcome<#ok, #err>);

        let this = Ident::new("__orchestrator_this", Span::call_site());
        let ctx = Ident::new("__orchestrator_ctx", Span::call_site());
        let call = self.call(&quote!(&#this), &ctx);
        // `T` and `E` are given explicitly, spanned on the user's return type, so a bound
        // they miss (`Serialize`, `Display`, `Send`) is reported on that type; a missing
        // `Clone` or `ServiceOrchestrator` impl is reported on `self`.
        let types = quote!(::<_, _, #ok, #err>);
        let doc = Docs::new(name, self.receiver.is_some());
        let (doc_start, doc_run, doc_run_sync) = (doc.start(), doc.run(), doc.run_sync());

        let bodies = match self.receiver {
            Some(receiver) => {
                let self_token = receiver.self_token;
                let service = quote_spanned!(self_token.span=>
                    <Self as ::orchestrator::__private::ServiceOrchestrator>
                );
                let clone = quote_spanned!(self_token.span=>
                    let #this = ::core::clone::Clone::clone(self);
                );
                let borrowed_call = self.call(&quote!(#self_token), &ctx);
                [
                    quote! {
                        #clone
                        #service::start_managed_operation #types (
                            self, __orchestrator_spec, move |#ctx| async move { #call.await },
                        )
                    },
                    quote! {
                        #service::run_managed_operation #types (
                            self, __orchestrator_spec, move |#ctx| #borrowed_call,
                        ).await
                    },
                    quote! {
                        #clone
                        #service::run_sync_operation #types (
                            self, __orchestrator_spec, move |#ctx| async move { #call.await },
                        )
                    },
                ]
            }
            None => [
                quote! {
                    ::orchestrator::__private::start #types (ops, __orchestrator_spec, move |#ctx| #call)
                },
                quote! {
                    ::orchestrator::__private::Operations::run #types (
                        ops, __orchestrator_spec, move |#ctx| #call,
                    ).await
                },
                quote! {
                    ::orchestrator::__private::Operations::run_sync #types (
                        ops, __orchestrator_spec, move |#ctx| #call,
                    )
                },
            ],
        };
        let [start_body, run_body, run_sync_body] = bodies;

        // A service rarely calls all three forms; `allow(dead_code)` spares a private
        // operation two warnings the user can do nothing about.
        quote! {
            #cfgs
            #doc_start
            #[allow(dead_code)]
            #vis fn #start(#params) -> ::orchestrator::__private::Result<::orchestrator::__private::StartedOperation> {
                #spec
                #start_body
            }

            #cfgs
            #doc_run
            #[allow(dead_code)]
            #vis async fn #run(#params) -> #outcome {
                #spec
                #run_body
            }

            #cfgs
            #doc_run_sync
            #[allow(dead_code)]
            #vis fn #run_sync(#params) -> ::orchestrator::__private::Result<#outcome> {
                #spec
                #run_sync_body
            }
        }
    }

    /// `let __orchestrator_spec = ...;`, evaluated before the arguments are moved, so
    /// `total_steps` may read them.
    fn spec(&self, args: &Args) -> TokenStream {
        let operation_type = &args.operation_type;
        let description = match &args.description {
            Some(description) => quote!(#description),
            None => {
                let default = self.item.sig.ident.unraw().to_string().replace('_', " ");
                quote!(#default)
            }
        };
        let total_steps = match &args.total_steps {
            Some(expr) => {
                // Spanned from the expression's first token to its last, so that a
                // non-numeric `total_steps` is reported on the user's expression.
                let mut tokens = expr.to_token_stream().into_iter().map(|t| t.span());
                let first = tokens.next().unwrap_or_else(Span::call_site);
                let last = tokens.last().unwrap_or(first);
                let open = quote_spanned!(first=> (#expr));
                let cast = quote_spanned!(last=> as u64);
                quote!(#open #cast)
            }
            None => quote!(0_u64),
        };
        quote! {
            // `as u64` is the documented conversion of `total_steps`, not the user's cast.
            #[allow(
                clippy::unnecessary_cast,
                clippy::cast_lossless,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_possible_wrap,
                clippy::cast_precision_loss
            )]
            let __orchestrator_spec = ::orchestrator::__private::spec(#operation_type, #description, #total_steps);
        }
    }

    /// The call of the original fn (a method on `this`, a `&Self`, when it has a
    /// receiver) with the context in its declared position, spanned on the fn's name so
    /// that errors about it point at the user's code.
    fn call(&self, this: &TokenStream, ctx: &Ident) -> TokenStream {
        let name = &self.item.sig.ident;
        let args = self.params.iter().map(|param| match param {
            Some(Param { ident, .. }) => quote!(#ident),
            None => quote!(#ctx),
        });
        match self.receiver {
            Some(_) => quote_spanned!(name.span()=> Self::#name(#this, #(#args),*)),
            None => quote_spanned!(name.span()=> #name(#(#args),*)),
        }
    }
}

/// `#[cfg(...)]` attributes are copied to the generated fns, so they exist exactly when
/// the original does.
fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

/// Doc comments of the generated fns, linking back to the original.
struct Docs {
    link: String,
}

impl Docs {
    fn new(name: &Ident, method: bool) -> Self {
        let name = name.unraw();
        let link = if method {
            format!("[`{name}`](Self::{name})")
        } else {
            format!("[`{name}`]")
        };
        Self { link }
    }

    fn start(&self) -> TokenStream {
        doc(&format!(
            "Starts {} as a managed operation in the background and returns at once with \
             its id.\n\nThe operation is registered, reports progress, and can be \
             cancelled through the registry.\n\n# Errors\n\nIf no Tokio runtime is running \
             (nothing is registered then).\n\nGenerated by `#[managed_operation]`.",
            self.link
        ))
    }

    fn run(&self) -> TokenStream {
        doc(&format!(
            "Runs {} as a managed operation and awaits it inline: registered, observable and \
             cancellable meanwhile; returns its typed outcome.\n\nGenerated by \
             `#[managed_operation]`.",
            self.link
        ))
    }

    fn run_sync(&self) -> TokenStream {
        doc(&format!(
            "Runs {} as a managed operation to the end, blocking the calling thread; works \
             with or without a surrounding Tokio runtime.\n\n# Errors\n\nIf a runtime for the \
             run cannot be built.\n\nGenerated by `#[managed_operation]`.",
            self.link
        ))
    }
}

fn doc(text: &str) -> TokenStream {
    quote!(#[doc = #text])
}
