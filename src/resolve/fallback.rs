//! The fallback's boot: what unknown machines get (a role resolved
//! without a machine, or the menu of every role that can boot so).

use super::*;

/// What a role boots without a machine (for the fallback and its menu).
struct Unbound<'a> {
    role: &'a Role,
    chain: Vec<&'a Role>,
    image: &'a Image,
}

impl<'a> Resolver<'a, '_> {
    fn unbound(&self, role: &'a str) -> Option<Unbound<'a>> {
        let chain = self.site.role_chain(role);
        let image = chain
            .iter()
            .find_map(|r| r.image.as_deref())
            .and_then(|i| self.site.images.get(i))?;
        Some(Unbound {
            role: chain.first()?,
            chain,
            image,
        })
    }

    /// The fallback's view of a role: resolved without a machine.
    fn unbound_view(&self, u: &Unbound<'a>, diags: &mut Diags) -> Option<FallbackEntry<'a>> {
        let mut layers: Vec<&Vars> = vec![&u.image.vars];
        layers.extend(u.chain.iter().rev().map(|r| &r.vars));
        let ctx = val(self.context(u.role, u.image, &layers));
        let before = diags.errors();
        let what = format!("the fallback (role {}), which has no machine", u.role.name);
        let args = self.args(&ctx, u.image, &u.chain, &[], &what, diags);
        if diags.errors() > before {
            return None;
        }
        Some(FallbackEntry {
            role: role_view(u.role),
            image: image_view(u.image),
            boot: boot_view(&u.image.boot, "", &args),
        })
    }

    pub(super) fn fallback(&self, diags: &mut Diags) -> Option<FallbackView<'a>> {
        let mode = match &self.site.fallback {
            Fallback::Local => "local",
            Fallback::Menu => "menu",
            Fallback::Shell => "shell",
            Fallback::Role(_) => "role",
        };
        let mut fb = FallbackView {
            mode,
            role: None,
            image: None,
            boot: None,
            entries: None,
        };
        match &self.site.fallback {
            Fallback::Role(r) => {
                let v = self.unbound(r).and_then(|u| self.unbound_view(&u, diags))?;
                fb.role = Some(v.role);
                fb.image = Some(v.image);
                fb.boot = Some(v.boot);
            }
            Fallback::Menu => {
                let mut entries = Vec::new();
                // The roles chosen by `[site] menu` must each boot; without
                // it, every role that can is offered.
                let chosen = self.site.menu.as_ref();
                let names: Vec<(&str, Option<&crate::diag::Loc>)> = match chosen {
                    Some(menu) => menu.iter().map(|(r, at)| (r.as_str(), Some(at))).collect(),
                    None => self.site.roles.keys().map(|r| (r.as_str(), None)).collect(),
                };
                for (name, at) in names {
                    let Some(u) = self.unbound(name) else {
                        if let Some(at) = at {
                            diags.push(
                                Diag::error(format!("menu role `{name}` has no image"))
                                    .at(at.clone(), "cannot boot")
                                    .help("give the role (or a role it extends) image = \"…\""),
                            );
                        }
                        continue;
                    };
                    let mut local = Diags::default();
                    match (self.unbound_view(&u, &mut local), at) {
                        (Some(v), _) => entries.push(v),
                        (None, Some(at)) => diags.push(
                            Diag::error(format!("menu role `{name}` cannot boot without a machine"))
                                .at(at.clone(), "its kernel args or files need a machine")
                                .help("the fallback boots unknown machines, so `machine` is not defined there; remove the role from `menu`"),
                        ),
                        (None, None) => diags.push(
                            Diag::warning(Lint::MenuRoleLeftOut, format!("role `{name}` is left out of the fallback menu"))
                                .at(crate::diag::Loc::new(u.role.file, 0..0), "its kernel args need a machine")
                                .help("the fallback boots unknown machines, so `machine` is not defined there"),
                        ),
                    }
                }
                fb.entries = Some(entries);
            }
            Fallback::Local | Fallback::Shell => {}
        }
        Some(fb)
    }
}
