// Roles a person holds in a team, from the least to the most trusted.

export const teamRoles = ['viewer', 'member', 'maintainer', 'admin'] as const;
export type TeamRole = (typeof teamRoles)[number];
