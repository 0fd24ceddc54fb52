//! Validation of the annotated fn: one small `check_*` per rule, each error spanned on
//! the offending token.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, FnArg, GenericArgument, Ident, Pat, PatIdent, PathArguments, Receiver, ReturnType,
    Signature, Token, Type, TypePath, Visibility,
};

use crate::attr::{Args, Errors};

/// The annotated fn, parsed without its body: a syntax error inside the body is left to
/// the compiler, which reports it on the original fn (emitted unchanged).
pub(crate) struct OperationFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
}

impl Parse for OperationFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        if input.peek(Token![;]) {
            return Err(input.error("a managed operation needs a body"));
        }
        let body = input.parse::<proc_macro2::Group>()?;
        if body.delimiter() != proc_macro2::Delimiter::Brace || !input.is_empty() {
            return Err(input.error("expected a fn body"));
        }
        Ok(Self { attrs, vis, sig })
    }
}

/// What the generated fns need to know about the annotated fn, once it is validated.
pub(crate) struct Operation<'a> {
    pub(crate) item: &'a OperationFn,
    /// `&self`, or `None` for a free fn (which gets an `ops: &Operations` parameter).
    pub(crate) receiver: Option<&'a Receiver>,
    /// The typed parameters in order; `None` stands for the `OperationContext`.
    pub(crate) params: Vec<Option<Param<'a>>>,
    /// The declared return type (any `Result` alias; resolved through a trait).
    pub(crate) output: &'a Type,
    /// Where errors about the `Ok` type point: `T` when it is written, else the type.
    pub(crate) ok_span: Span,
}

/// A parameter of the annotated fn other than the context.
pub(crate) struct Param<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// Recorded in `metadata.parameters` (when it serialises); `false` if in `skip(...)`.
    pub(crate) record: bool,
}

impl<'a> Operation<'a> {
    /// Validates `item` against `args`, reporting every problem found (not just the first).
    pub(crate) fn analyse(item: &'a OperationFn, args: Option<&Args>) -> syn::Result<Self> {
        let sig = &item.sig;
        let mut errors = Errors::default();
        errors.check(check_async(sig));
        errors.check(check_safe(sig));
        errors.check(check_generics(sig));
        let receiver = errors.check(check_receiver(sig));
        let params = errors.check(check_params(sig, sig.receiver().is_none()));
        let output = errors.check(check_output(sig));
        let params = match (params, args) {
            (Some(params), Some(args)) => errors.check(check_skip(params, &args.skip)),
            (params, _) => params,
        };
        errors.finish()?;
        let (Some(receiver), Some(params), Some((output, ok_span))) = (receiver, params, output)
        else {
            unreachable!("a check failed without recording its error")
        };
        Ok(Self {
            item,
            receiver,
            params,
            output,
            ok_span,
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
            params.push(Some(Param {
                ident,
                ty,
                record: true,
            }));
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

/// The fn must declare a return type that can be a `Result`. Which `Result` (an alias
/// such as `io::Result<T>`, a renamed import) is resolved by the compiler through
/// `__private::OperationResult`, not by its spelling; only types that cannot be a
/// `Result` at all (a tuple, a reference, `impl Trait`) are rejected here. Returns the
/// type and the span of its `T` (the first generic argument, when written).
fn check_output(sig: &Signature) -> syn::Result<(&Type, Span)> {
    const MESSAGE: &str = "a managed operation must return `Result<T, E>` (or an alias of it)";
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => return Err(syn::Error::new_spanned(&sig.ident, MESSAGE)),
    };
    let Some(path) = path_type(ty) else {
        return Err(syn::Error::new_spanned(ty, MESSAGE));
    };
    let ok_span = path
        .path
        .segments
        .last()
        .and_then(|segment| match &segment.arguments {
            PathArguments::AngleBracketed(args) => args.args.first(),
            _ => None,
        })
        .and_then(|arg| match arg {
            GenericArgument::Type(ok) => Some(span_of(ok)),
            _ => None,
        })
        .unwrap_or_else(|| span_of(ty));
    Ok((ty, ok_span))
}

/// `ty` as a path type, looking through parentheses and invisible groups.
fn path_type(mut ty: &Type) -> Option<&TypePath> {
    loop {
        match ty {
            Type::Path(path) => return Some(path),
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return None,
        }
    }
}

/// Every name in `skip(...)` must be a parameter; marks those parameters unrecorded.
fn check_skip<'a>(
    mut params: Vec<Option<Param<'a>>>,
    skip: &[Ident],
) -> syn::Result<Vec<Option<Param<'a>>>> {
    let mut errors = Errors::default();
    for name in skip {
        let param = params
            .iter_mut()
            .flatten()
            .find(|param| param.ident.unraw_eq(name));
        match param {
            Some(param) if param.record => param.record = false,
            Some(_) => errors.push(syn::Error::new_spanned(
                name,
                format!("`{name}` is skipped twice"),
            )),
            None => errors.push(syn::Error::new_spanned(
                name,
                format!("`skip` names a parameter, and this fn has no parameter `{name}`"),
            )),
        }
    }
    errors.finish()?;
    Ok(params)
}

/// Comparison of names ignoring `r#`.
trait UnrawEq {
    fn unraw_eq(&self, other: &Ident) -> bool;
}

impl UnrawEq for Ident {
    fn unraw_eq(&self, other: &Ident) -> bool {
        use syn::ext::IdentExt;
        self.unraw() == other.unraw()
    }
}

/// The span from the first token of `tokens` to its last (the whole type or expression
/// where the compiler can join spans, its first token otherwise).
pub(crate) fn span_of(tokens: &dyn quote::ToTokens) -> Span {
    let stream: TokenStream = tokens.to_token_stream();
    let mut spans = stream.into_iter().map(|t| t.span());
    let first = spans.next().unwrap_or_else(Span::call_site);
    let last = spans.last().unwrap_or(first);
    first.join(last).unwrap_or(first)
}
