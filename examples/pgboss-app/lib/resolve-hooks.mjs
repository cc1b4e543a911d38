// Module resolution hooks (registered by deps.mjs): the bare specifiers 'pg' and 'pg-boss' in the scaffolded
// code (GENERATED_DIR) resolve from PGBOSS_DIR, as loadDeps() does, since nothing is installed in this app's folder.
let parentURL = null

export async function initialize (data) {
  parentURL = data.parentURL
}

export async function resolve (specifier, context, nextResolve) {
  const bare = specifier.split('/')[0]
  if (parentURL && (bare === 'pg' || bare === 'pg-boss')) return nextResolve(specifier, { ...context, parentURL })
  return nextResolve(specifier, context)
}
