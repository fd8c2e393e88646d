import type { AuthService } from '../auth/auth-service.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import type { AccountService } from '../account/account-service.ts';
import type { ConversationService } from '../conversations/conversation-service.ts';
import type { PaymentsService } from '../payments/payments-service.ts';
import type { WorkBudgets } from '../limits/budgets.ts';
import type { NotificationSettings } from '../notify/notification-settings.ts';
import type { SearchService } from '../search/search-service.ts';
import type { AttachmentService } from '../attachments/attachment-service.ts';

/** What the procedures may call: domain services only, never the database directly. */
export interface ApiServices {
  auth: AuthService;
  profiles: ProfileService;
  account: AccountService;
  conversations: ConversationService;
  payments: PaymentsService;
  metrics: Metrics;
  /** Per-user and per-IP work budgets (limits/budgets.ts). */
  budgets: WorkBudgets;
  notifications: NotificationSettings;
  search: SearchService;
  attachments: AttachmentService;
}
