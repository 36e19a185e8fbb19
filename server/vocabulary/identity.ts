// Roles a person holds in a team, from the least to the most trusted.

export const teamRoles = ['viewer', 'member', 'maintainer', 'admin'] as const;
export type TeamRole = (typeof teamRoles)[number];
/** The roles that act for a team (publish, hold its grants, own its hot clusters); a team's viewers only read. */
export const teamWriterRoles: readonly TeamRole[] = ['member', 'maintainer', 'admin'];
