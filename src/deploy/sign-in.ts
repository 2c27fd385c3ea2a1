/**
 * Credentials for the client: the AccessKeys from inputs or environment, or OIDC sign-in, where the job's
 * GitHub ID token is exchanged with STS for temporary credentials that are refreshed before they expire.
 */
import {
  type Credentials,
  type CredentialsProvider,
  assumeRoleWithOidc,
  ecsRoleCredentials,
  refreshingCredentials,
} from '../oss/index.ts';
import type { DeploySettings, EcsAuth, OidcAuth } from './settings.ts';
import { describeError } from './describe.ts';

export interface SignInDeps {
  getIdToken: (audience: string) => Promise<string>;
  mask: (secret: string) => void;
  info: (message: string) => void;
  warning: (message: string) => void;
  /** Fetch the next set this long before the current one expires. @default 5 minutes */
  refreshBeforeMs?: number;
}

export class SignInError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'SignInError';
  }
}

export function credentialsFor(
  auth: DeploySettings['auth'],
  deps: SignInDeps,
): Credentials | CredentialsProvider {
  if (auth.kind === 'keys') {
    const { kind: _kind, ...keys } = auth;
    return keys;
  }
  if (auth.kind === 'ecs') return ecsSignIn(auth, deps);
  let sets = 0;
  return refreshingCredentials(() => signIn(auth, deps, ++sets), {
    ...(deps.refreshBeforeMs !== undefined ? { refreshBeforeMs: deps.refreshBeforeMs } : {}),
    onRefreshError: (e) =>
      deps.warning(
        `could not refresh the OSS credentials yet (the current ones still work): ${describeError(e)}`,
      ),
  });
}

function maskSet(creds: Credentials, deps: SignInDeps): void {
  // the key id too, since it names the session
  deps.mask(creds.accessKeyId);
  deps.mask(creds.accessKeySecret);
  if (creds.securityToken) deps.mask(creds.securityToken);
}

/** The instance's RAM role, in hardened mode, refreshed before expiry; each new set masked before use. */
function ecsSignIn(auth: EcsAuth, deps: SignInDeps): CredentialsProvider {
  const inner = ecsRoleCredentials({
    roleName: auth.roleName,
    metadataUrl: auth.metadataUrl,
    refresh: {
      ...(deps.refreshBeforeMs !== undefined ? { refreshBeforeMs: deps.refreshBeforeMs } : {}),
      onRefreshError: (e) =>
        deps.warning(
          `could not refresh the OSS credentials yet (the current ones still work): ${describeError(e)}`,
        ),
    },
  });
  let last: string | undefined;
  return async (hint) => {
    let creds: Credentials;
    try {
      creds = await inner(hint);
    } catch (e) {
      throw new SignInError(describeError(e), e);
    }
    if (creds.accessKeyId !== last) {
      maskSet(creds, deps);
      const role = (creds as { roleName?: string }).roleName ?? auth.roleName ?? 'the instance role';
      deps.info(
        `${last === undefined ? 'signed in' : 'refreshed the credentials'} with the ECS RAM role ${role}, valid until ${creds.expiration?.toISOString() ?? 'unknown'}`,
      );
      last = creds.accessKeyId;
    }
    return creds;
  };
}

async function signIn(auth: OidcAuth, deps: SignInDeps, n: number): Promise<Credentials> {
  let idToken: string;
  try {
    idToken = await deps.getIdToken(auth.audience);
  } catch (e) {
    throw new SignInError(
      `OIDC sign-in: could not get the GitHub ID token (${describeError(e)}). The job needs \`permissions: id-token: write\`, and pull requests from forks get no token.`,
      e,
    );
  }
  deps.mask(idToken);
  let creds: Credentials;
  try {
    creds = await assumeRoleWithOidc({
      endpoint: auth.stsEndpoint,
      roleArn: auth.roleArn,
      oidcProviderArn: auth.oidcProviderArn,
      oidcToken: idToken,
      roleSessionName: auth.roleSessionName,
      durationSeconds: auth.durationSeconds,
    });
  } catch (e) {
    throw new SignInError(
      `OIDC sign-in: STS AssumeRoleWithOIDC refused role ${auth.roleArn} with provider ${auth.oidcProviderArn}: ${describeError(e)}. Check the role's trust policy (audience \`${auth.audience}\`, the repository's \`sub\`) and its maximum session duration.`,
      e,
    );
  }
  // mask before anything can print them
  maskSet(creds, deps);
  deps.info(
    `${n === 1 ? 'signed in' : 'refreshed the credentials'} with OIDC as ${auth.roleArn} (session ${auth.roleSessionName}), valid until ${creds.expiration?.toISOString() ?? 'unknown'}`,
  );
  return creds;
}
