// Cost and budgets: what a call will cost, and the caps its operator set. One machinery under every front-end.
export * from './price.ts';
export * from './estimate.ts';
export * from './budget.ts';
export * from './redis-budget.ts';
export * from './charge.ts';
export * from './balance-watch.ts';
