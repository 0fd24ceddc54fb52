//! Generation of `start_*`, `spawn_*`, `run_*` and `run_*_sync` for a validated fn.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::ext::IdentExt;

use crate::attr::Args;
use crate::check::{Operation, Param, span_of};
use crate::docs::Docs;

impl Operation<'_> {
    /// The generated fns, to be emitted after the original fn.
    pub(crate) fn generate(&self, args: &Args) -> TokenStream {
        let forms = self.forms(args);
        let register = self.register(args);
        quote!(#forms #register)
    }

    /// `register_<name>` of a `resumable` operation (nothing otherwise): registers
    /// the fn as the one that resumes operations of its kind, reading its arguments
    /// back from the recorded parameters.
    fn register(&self, args: &Args) -> TokenStream {
        if args.resumable.is_none() {
            return TokenStream::new();
        }
        let private = match &args.krate {
            Some(krate) => quote!(#krate::__private),
            None => quote!(::orchestrator::__private),
        };
        if let Some(param) = self.params.iter().flatten().find(|p| !p.record) {
            let name = param.ident.unraw();
            return syn::Error::new_spanned(
                param.ident,
                format!(
                    "`{name}` is in `skip(...)`, but a `resumable` operation is resumed from its \
                     recorded arguments: record `{name}`, or drop `resumable`"
                ),
            )
            .to_compile_error();
        }
        let name = &self.item.sig.ident;
        let vis = &self.item.vis;
        let cfgs = self
            .item
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"));
        let register = format_ident!("register_{}", name.unraw(), span = name.span());
        let operation_type = &args.operation_type;
        let output = self.output;
        let (ok, err) = self.result_types(&private);
        let bounds = respan(
            quote! {
                #output: #private::OperationResult,
                #ok: #private::Summary + ::core::marker::Send + 'static,
                #err: #private::ErrorMessage,
            },
            self.ok_span,
        );
        let this = Ident::new("__orchestrator_this", Span::call_site());
        let ctx = Ident::new("__orchestrator_ctx", Span::call_site());
        let params = Ident::new("__orchestrator_params", Span::call_site());
        // Each argument read back under its name as its declared type: a type that does
        // not deserialise is an error on it.
        let reads = self.params.iter().flatten().map(|Param { ident, ty, .. }| {
            let key = ident.unraw().to_string();
            let read = respan(quote!(#private::resume_param), span_of(ty));
            quote_spanned!(span_of(ty)=>
                let #ident: #ty = #read(&#params, #key)?;
            )
        });
        let call = self.call(&quote!(&#this), &ctx);
        let body = quote! {
            async move {
                #(#reads)*
                #private::OperationResult::into_result(#call.await)
                    .map_err(|e| ::std::string::ToString::to_string(&e))
            }
        };
        let summary = format!(
            " Registers [`{name}`](Self::{name}) as the fn that resumes `{}` operations of \
             `ops` (see `Operations::resumable`): a resumed attempt is called with the \
             arguments recorded at its start.",
            operation_type.value()
        );
        match self.receiver {
            Some(_) => {
                let doc = format!(
                    "{summary} `make` rebuilds the service from the registry for each \
                     resumed attempt (the registry keeps the fn: a service captured in it \
                     would keep the registry alive)."
                );
                quote! {
                    #(#cfgs)*
                    #[doc = #doc]
                    #[allow(dead_code)]
                    #vis fn #register(
                        ops: &#private::Operations,
                        make: impl ::core::ops::Fn(#private::Operations) -> Self
                            + ::core::marker::Send + ::core::marker::Sync + 'static,
                    ) where Self: ::core::marker::Send + ::core::marker::Sync + 'static, #bounds {
                        #private::Operations::resumable(ops, #operation_type, move |__orchestrator_ops, #ctx, #params| {
                            let #this = make(__orchestrator_ops);
                            #body
                        });
                    }
                }
            }
            None => {
                let doc = summary.replace("(Self::", "(");
                quote! {
                    #(#cfgs)*
                    #[doc = #doc]
                    #[allow(dead_code)]
                    #vis fn #register(ops: &#private::Operations) where #bounds {
                        #private::Operations::resumable(ops, #operation_type, move |_, #ctx, #params| #body);
                    }
                }
            }
        }
    }

    /// `T` and `E` of the declared return type, spanned on `T` where it is written.
    fn result_types(&self, private: &TokenStream) -> (TokenStream, TokenStream) {
        let output = self.output;
        let ok = respan(
            quote!(<#output as #private::OperationResult>::Ok),
            self.ok_span,
        );
        let err = respan(
            quote!(<#output as #private::OperationResult>::Err),
            self.ok_span,
        );
        (ok, err)
    }

    /// `start_*`, `spawn_*`, `run_*` and `run_*_sync`.
    fn forms(&self, args: &Args) -> TokenStream {
        let private = match &args.krate {
            Some(krate) => quote!(#krate::__private),
            None => quote!(::orchestrator::__private),
        };
        let sig = &self.item.sig;
        let name = &sig.ident;
        let vis = &self.item.vis;
        let cfgs = self
            .item
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"));
        let cfgs = quote!(#(#cfgs)*);

        let start = format_ident!("start_{}", name.unraw(), span = name.span());
        let spawn = format_ident!("spawn_{}", name.unraw(), span = name.span());
        let run = format_ident!("run_{}", name.unraw(), span = name.span());
        let run_sync = format_ident!("run_{}_sync", name.unraw(), span = name.span());

        let first_param = match self.receiver {
            Some(receiver) => quote!(#receiver),
            None => quote!(ops: &#private::Operations),
        };
        let params = self
            .params
            .iter()
            .flatten()
            .map(|Param { ident, ty, .. }| quote!(#ident: #ty));
        let params = quote!(#first_param, #(#params),*);
        let spec = self.spec(args, &private);

        // `T` and `E` are read off the declared return type through
        // `__private::OperationResult`, so any alias of `Result` works. Every mention is
        // spanned on one user token (`T` where it is written), so that a bound `T` misses
        // (`Serialize`, `Send`) is one error there, not one per generated fn.
        let output = self.output;
        let (ok, err) = self.result_types(&private);
        let outcome = respan(quote!(#private::Outcome<#ok, #err>), self.ok_span);
        let handle = respan(quote!(#private::OperationHandle<#ok, #err>), self.ok_span);
        let types = respan(quote!(::<_, _, #ok, #err>), self.ok_span);
        // The bounds, as `where` clauses of each generated fn rather than left to the
        // runtime fns they call: a bound that does not hold is then one error (the
        // same predicate on the same span in every fn is reported once), and the
        // bodies, which may assume it, add none.
        let bounds = respan(
            quote! {
                #output: #private::OperationResult,
                #ok: #private::Summary,
                #err: #private::ErrorMessage,
            },
            self.ok_span,
        );
        let send = respan(
            quote!(#ok: ::core::marker::Send + 'static, #err: ::core::marker::Send + 'static,),
            self.ok_span,
        );
        let where_send = quote!(where #bounds #send);
        let where_local = quote!(where #bounds);

        let this = Ident::new("__orchestrator_this", Span::call_site());
        let ctx = Ident::new("__orchestrator_ctx", Span::call_site());
        let spec_var = Ident::new("__orchestrator_spec", Span::call_site());
        let into_result = quote!(#private::OperationResult::into_result);
        let call = self.call(&quote!(&#this), &ctx);
        let call = quote!(#into_result(#call.await));
        let doc = Docs::new(name, self.receiver.is_some());
        let (doc_start, doc_spawn, doc_run, doc_run_sync) =
            (doc.start(), doc.spawn(), doc.run(), doc.run_sync());

        let [start_body, spawn_body, run_body, run_sync_body] = match self.receiver {
            Some(receiver) => {
                let self_token = receiver.self_token;
                // A missing `Clone` or `ServiceOrchestrator` impl is reported on `self`.
                let service = quote_spanned!(self_token.span=>
                    <Self as #private::ServiceOrchestrator>
                );
                let clone = quote_spanned!(self_token.span=>
                    let #this = ::core::clone::Clone::clone(self);
                );
                let borrowed_call = self.call(&quote!(#self_token), &ctx);
                let borrowed_call = quote!(async move { #into_result(#borrowed_call.await) });
                [
                    quote! {
                        #clone
                        #service::start_managed_operation #types (
                            self, #spec_var, move |#ctx| async move { #call },
                        )
                    },
                    quote! {
                        #clone
                        #private::Operations::spawn #types (
                            #service::operations(self),
                            #spec_var,
                            move |#ctx| async move { #call },
                        )
                    },
                    quote! {
                        #service::run_managed_operation #types (
                            self, #spec_var, move |#ctx| #borrowed_call,
                        ).await
                    },
                    quote! {
                        #clone
                        #service::run_sync_operation #types (
                            self, #spec_var, move |#ctx| async move { #call },
                        )
                    },
                ]
            }
            None => [
                quote! {
                    #private::start #types (ops, #spec_var, move |#ctx| async move { #call })
                },
                quote! {
                    #private::Operations::spawn #types (
                        ops, #spec_var, move |#ctx| async move { #call },
                    )
                },
                quote! {
                    #private::Operations::run #types (
                        ops, #spec_var, move |#ctx| async move { #call },
                    ).await
                },
                quote! {
                    #private::Operations::run_sync #types (
                        ops, #spec_var, move |#ctx| async move { #call },
                    )
                },
            ],
        };

        let Some(path) = &args.host_path else {
            // A service rarely calls every form; `allow(dead_code)` spares a private
            // operation warnings the user can do nothing about.
            return quote! {
                #cfgs
                #doc_start
                #[allow(dead_code)]
                #vis fn #start(#params) -> #private::Result<#private::StartedOperation> #where_send {
                    #spec
                    #start_body
                }

                #cfgs
                #doc_spawn
                #[allow(dead_code)]
                #vis fn #spawn(#params) -> #private::Result<#handle> #where_send {
                    #spec
                    #spawn_body
                }

                #cfgs
                #doc_run
                #[allow(dead_code)]
                #vis async fn #run(#params) -> #outcome #where_local {
                    #spec
                    #run_body
                }

                #cfgs
                #doc_run_sync
                #[allow(dead_code)]
                #vis fn #run_sync(#params) -> #private::Result<#outcome> #where_send {
                    #spec
                    #run_sync_body
                }
            };
        };

        // Routed (`host_path`, checked to be a `&self` method): every form asks the
        // service for its host first. The host's result is read back as `T`.
        let service = quote!(<Self as #private::ServiceOrchestrator>);
        let host = Ident::new("__orchestrator_host", Span::call_site());
        let body = Ident::new("__orchestrator_body", Span::call_site());
        let fields = self.params.iter().flatten().map(|Param { ident, .. }| {
            let key = ident.unraw().to_string();
            quote_spanned!(ident.span()=>
                #body.insert(::std::string::String::from(#key), #private::to_json(&#ident)?);
            )
        });
        // The arguments as the host's JSON body: `Err` if one does not serialise.
        let make_body = quote! {
            let #body = (|| -> #private::Result<#private::JsonMap> {
                let mut #body = #private::JsonMap::new();
                #(#fields)*
                ::core::result::Result::Ok(#body)
            })();
        };
        let routed_bounds = respan(quote!(#ok: #private::DeserializeOwned,), self.ok_span);
        let where_routed = quote!(where #bounds #send #routed_bounds);
        let routed_types = respan(quote!(::<#ok, #err>), self.ok_span);
        let ops = quote!(#service::operations(self));
        let path = path.value();
        let (doc_start, doc_spawn, doc_run, doc_run_sync) = (
            doc.start_routed(&path),
            doc.routed(&doc_spawn, &path),
            doc.routed(&doc_run, &path),
            doc.routed(&doc_run_sync, &path),
        );
        quote! {
            #cfgs
            #doc_start
            #[allow(dead_code)]
            #vis async fn #start(#params) -> #private::Result<#private::StartedOperation> #where_send {
                #spec
                if let ::core::option::Option::Some(#host) = #private::host_of(self) {
                    #make_body
                    return #host.start(#ops, #spec_var, #path, &#body?).await;
                }
                #start_body
            }

            #cfgs
            #doc_spawn
            #[allow(dead_code)]
            #vis async fn #spawn(#params) -> #private::Result<#handle> #where_routed {
                #spec
                if let ::core::option::Option::Some(#host) = #private::host_of(self) {
                    #make_body
                    return #host.spawn #routed_types (#ops, #spec_var, #path, &#body?).await;
                }
                #spawn_body
            }

            #cfgs
            #doc_run
            #[allow(dead_code)]
            #vis async fn #run(#params) -> #outcome #where_routed {
                #spec
                if let ::core::option::Option::Some(#host) = #private::host_of(self) {
                    #make_body
                    return #private::host_run #routed_types (#host, #ops, #spec_var, #path, #body).await;
                }
                #run_body
            }

            #cfgs
            #doc_run_sync
            #[allow(dead_code)]
            #vis fn #run_sync(#params) -> #private::Result<#outcome> #where_routed {
                #spec
                if let ::core::option::Option::Some(#host) = #private::host_of(self) {
                    #make_body
                    return #private::host_run_sync #routed_types (#host, #ops, #spec_var, #path, #body);
                }
                #run_sync_body
            }
        }
    }

    /// `let __orchestrator_spec = ...;`, evaluated before the arguments are moved, so
    /// `total_steps` may read them and the parameters can be recorded.
    fn spec(&self, args: &Args, private: &TokenStream) -> TokenStream {
        let operation_type = &args.operation_type;
        let description = match &args.description {
            Some(description) => quote!(#description),
            None => {
                let default = self.item.sig.ident.unraw().to_string().replace('_', " ");
                quote!(#default)
            }
        };
        let total_steps = match &args.total_steps {
            // Spanned on the expression, so a non-integer is reported there.
            Some(expr) => quote_spanned!(span_of(expr)=> #private::total_steps(#expr)),
            None => quote!(0_u64),
        };
        let spec = Ident::new("__orchestrator_spec", Span::call_site());
        let deadline = args.deadline.map(|d| {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote!(let #spec = #spec.with_deadline(#private::Duration::new(#secs, #nanos));)
        });
        let grace = args.grace_period.map(|d| {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote!(let #spec = #spec.with_grace_period(#private::Duration::new(#secs, #nanos));)
        });
        let labels = args
            .labels
            .iter()
            .map(|(key, value)| quote!(let #spec = #spec.with_label(#key, #value);));
        // Autoref specialisation: `RecordParameter` applies to `Parameter<T>` when `T:
        // Serialize`, `SkipParameter` to `&Parameter<T>` otherwise; never an error.
        let parameters = self.params.iter().flatten().filter(|p| p.record).map(|p| {
            let ident = p.ident;
            let key = ident.unraw().to_string();
            quote! {
                let #spec = (&#private::Parameter(&#ident)).record(#spec, #key);
            }
        });
        quote! {
            let #spec = {
                #[allow(unused_imports)]
                use #private::{RecordParameter as _, SkipParameter as _};
                let #spec = #private::spec(#operation_type, #description, #total_steps);
                #deadline
                #grace
                #(#labels)*
                #(#parameters)*
                #spec
            };
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

/// `tokens` with every span set to `span`, recursively.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}
